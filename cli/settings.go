package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"cliq/settings"
)

func init() {
	extraCommands = append(extraCommands,
		command{"settings", "show or change a setting", runSettings})
}

const settingsUsage = `
Usage: cliq settings [--global] [KEY [VALUE]]
       cliq settings [--global] KEY --stdin

Without KEY, prints all settings as JSON with secrets masked: the project's
settings merged over the global ones inside a project, the global settings
elsewhere or with --global.

With KEY (a dotted path such as server.port), prints that value, masked if
it is a secret.

With KEY and VALUE, writes the value to the project's .cliq/settings.json,
or with --global to $CLIQ_HOME/settings.json. VALUE is read as JSON when it
parses (4100, true, ["a","b"], {"k":"v"}, or null to delete the key), else
as a plain string. The new settings are checked before anything is written.

--stdin reads the value from standard input as a plain string, without
echoing it, so that secrets stay out of the shell history.

Examples:
  cliq settings
  cliq settings server.port
  cliq settings default_agent claude-code
  cliq settings server.cors_origins '["https://dash.example.com"]' --global
  echo "$ANTHROPIC_API_KEY" | cliq settings agents.claude-code.api_key --stdin --global
`

func runSettings(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "settings", settingsUsage)
	global := fs.Bool("global", false, "use the global settings in $CLIQ_HOME instead of the project's")
	fromStdin := fs.Bool("stdin", false, "read the VALUE from standard input (for secrets)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 2 {
		return usagef("settings takes at most KEY and VALUE, got %d arguments; quote a VALUE with spaces", len(pos))
	}
	if *fromStdin && len(pos) != 1 {
		return usagef("--stdin needs exactly one KEY and no VALUE")
	}
	home, err := settings.Home()
	if err != nil {
		return err
	}
	project := ""
	if !*global {
		project, _ = findProject(env.Dir)
	}
	writing := *fromStdin || len(pos) == 2
	if writing && !*global && project == "" {
		return usagef("not inside a cliq project: add --global to change the global settings, or run 'cliq init' first")
	}

	switch {
	case *fromStdin:
		value, err := readStdinValue(env.Stdin)
		if err != nil {
			return err
		}
		return writeSetting(env, home, project, pos[0], value)
	case len(pos) == 2:
		var value any
		if err := json.Unmarshal([]byte(pos[1]), &value); err != nil {
			value = pos[1]
		}
		return writeSetting(env, home, project, pos[0], value)
	case len(pos) == 1:
		return printSetting(env, home, project, pos[0])
	}
	view, err := settings.Get(home, project, settingsScope(project))
	if err != nil {
		return err
	}
	return writeJSON(env.Stdout, view)
}

func settingsScope(project string) settings.Scope {
	if project == "" {
		return settings.ScopeGlobal
	}
	return settings.ScopeResolved
}

// printSetting prints one masked value: strings as they are, the rest as
// JSON.
func printSetting(env *Env, home, project, key string) error {
	view, err := settings.Get(home, project, settingsScope(project))
	if err != nil {
		return err
	}
	v, ok := settings.Lookup(view, key)
	if !ok {
		return &exitError{code: ExitFailure, msg: fmt.Sprintf("setting %s is not set; set it with 'cliq settings %s VALUE'", key, key)}
	}
	if s, ok := v.(string); ok {
		fmt.Fprintln(env.Stdout, s)
		return nil
	}
	return writeJSON(env.Stdout, v)
}

// writeSetting sets key to value in the project's settings file, or the
// global one when project is empty, and prints the masked result.
func writeSetting(env *Env, home, project, key string, value any) error {
	path, where := settings.GlobalPath(home), "global settings"
	if project != "" {
		path, where = settings.ProjectPath(project), "project settings"
	}
	if err := settings.SetValue(path, key, value); err != nil {
		return err
	}

	stored, err := settings.ReadFile(path)
	if err != nil {
		return err
	}
	if v, ok := settings.Lookup(settings.Mask(stored), key); ok {
		masked, _ := json.Marshal(v)
		fmt.Fprintf(env.Stdout, "Set %s = %s in the %s\n", key, masked, where)
	} else {
		fmt.Fprintf(env.Stdout, "Removed %s from the %s\n", key, where)
	}
	return nil
}

// readStdinValue reads a secret from standard input: everything up to EOF,
// without the trailing line break that echo adds.
func readStdinValue(stdin io.Reader) (string, error) {
	if stdin == nil {
		return "", usagef("--stdin needs the value on standard input")
	}
	data, err := io.ReadAll(io.LimitReader(stdin, 1<<20))
	if err != nil {
		return "", fmt.Errorf("read the value from standard input: %w", err)
	}
	value := strings.TrimRight(string(data), "\r\n")
	if value == "" {
		return "", usagef("--stdin read an empty value; pipe the value in, e.g. echo \"$TOKEN\" | cliq settings KEY --stdin")
	}
	return value, nil
}
