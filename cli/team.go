package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"cliq/settings"
	"cliq/teams"
)

func init() {
	extraCommands = append(extraCommands, command{"team", "list, create, check and install teams", runTeam})
}

const teamUsage = `
Usage: cliq team <command> [flags] [arguments]

Manages the library of teams: the built-in teams (@cliq), the teams
installed under $CLIQ_HOME/teams (@local and other scopes) and, inside a
project, the team assembled into it (@project). A bare NAME is looked up
as @local/NAME, then @cliq/NAME, then in the other installed scopes, then
as the project's team.

Commands:
  list                 list every team
  info NAME            show a team's phases, gates and roles
  new NAME             create a team with one exec phase (bare NAME: @local/NAME)
  copy SOURCE NAME     copy a team under a new name (bare NAME: @local/NAME)
  delete NAME          delete an installed team (built-in teams cannot be deleted)
  validate NAME|DIR    check a team, or a team directory, before a run
  install DIR          validate a team directory and install it under its name

Examples:
  cliq team list
  cliq team info hello-world
  cliq team copy @cliq/feature my-feature
  cliq team validate ./teams/review
  cliq team install ./teams/review
`

func runTeam(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprint(env.Stderr, strings.TrimLeft(teamUsage, "\n"))
		if len(args) == 0 {
			return &exitError{code: ExitUsage}
		}
		return nil
	}
	sub := map[string]func(*Env, []string) error{
		"list":     runTeamList,
		"info":     runTeamInfo,
		"new":      runTeamNew,
		"copy":     runTeamCopy,
		"delete":   runTeamDelete,
		"validate": runTeamValidate,
		"install":  runTeamInstall,
	}[args[0]]
	if sub == nil {
		return usagef("unknown team command %q (see 'cliq team -h')", args[0])
	}
	return sub(env, args[1:])
}

// teamArgs parses the flags of a team command, checks that it got want
// positional arguments, and returns them with CLIQ_HOME and the project
// directory ("" outside a project).
func teamArgs(env *Env, name, usage string, args []string, want int, flags func(fs *flag.FlagSet)) (
	pos []string, home, project string, err error) {
	fs := newFlagSet(env, "team "+name, usage)
	if flags != nil {
		flags(fs)
	}
	if pos, err = parseFlags(fs, args); err != nil {
		return nil, "", "", err
	}
	if len(pos) != want {
		return nil, "", "", usagef("team %s takes %d argument(s), got %d; see 'cliq team %s -h'",
			name, want, len(pos), name)
	}
	if home, err = settings.Home(); err != nil {
		return nil, "", "", err
	}
	project, _ = findProject(env.Dir)
	return pos, home, project, nil
}

const teamListUsage = `
Usage: cliq team list [--json]

Lists the built-in teams, the installed teams of every scope and, inside a
project, the team assembled into it. --json prints the same object as the
/teams/list/ endpoint.
`

func runTeamList(env *Env, args []string) error {
	var asJSON *bool
	_, home, project, err := teamArgs(env, "list", teamListUsage, args, 0, func(fs *flag.FlagSet) {
		asJSON = fs.Bool("json", false, "print the list as JSON")
	})
	if err != nil {
		return err
	}
	list, err := teams.List(home, project)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(env.Stdout, map[string]any{"teams": list})
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSCOPE\tVERSION\tPHASES\tDESCRIPTION")
	for _, s := range list {
		scope := s.Scope
		if s.Builtin {
			scope += " (built-in)"
		}
		desc := s.Description
		if s.Error != "" {
			desc = "INVALID: " + s.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", s.Name, scope, orDash(s.Version), s.PhaseCount, desc)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

const teamInfoUsage = `
Usage: cliq team info NAME [--json]

Shows a team: its inputs, and each phase with its type, agent, dependencies,
commands, gate settings and role file. NAME is @scope/name, a bare name, or
@project for the team assembled into the current project. --json prints
the same object as the /teams/get/ endpoint, role texts included.
`

func runTeamInfo(env *Env, args []string) error {
	var asJSON *bool
	pos, home, project, err := teamArgs(env, "info", teamInfoUsage, args, 1, func(fs *flag.FlagSet) {
		asJSON = fs.Bool("json", false, "print the team as JSON")
	})
	if err != nil {
		return err
	}
	d, err := teams.Get(home, project, pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(env.Stdout, d)
	}
	printTeam(env.Stdout, d)
	return nil
}

// printTeam writes a readable description of d.
func printTeam(w io.Writer, d *teams.Detail) {
	fmt.Fprintf(w, "%s %s (%s)\n", d.Name, orDash(d.Version), scopeLabel(d.Summary))
	if d.Description != "" {
		fmt.Fprintf(w, "%s\n", d.Description)
	}
	if d.Error != "" {
		fmt.Fprintf(w, "INVALID: %s\n", d.Error)
	}
	if len(d.Inputs) > 0 {
		fmt.Fprint(w, "\nInputs:\n")
		for _, in := range d.Inputs {
			fmt.Fprintf(w, "  %s  %s\n", in.Name, in.Description)
		}
	}
	fmt.Fprint(w, "\nPhases:\n")
	for i, p := range d.Phases {
		printPhase(w, i+1, p)
	}
}

func scopeLabel(s teams.Summary) string {
	switch {
	case s.Builtin:
		return "built-in"
	case s.Scope == teams.ProjectScope:
		return "assembled in this project"
	}
	return "installed in @" + s.Scope
}

func printPhase(w io.Writer, n int, p teams.PhaseDetail) {
	agent := p.Agent
	if agent == "" && p.Type != "team" {
		agent = "default_agent"
	}
	attrs := []string{p.Type}
	if agent != "" {
		attrs = append(attrs, "agent "+agent)
	}
	if p.MaxIterations > 0 {
		attrs = append(attrs, fmt.Sprintf("max_iterations %d", p.MaxIterations))
	}
	fmt.Fprintf(w, "  %d. %s (%s)\n", n, p.Name, strings.Join(attrs, ", "))
	if len(p.DependsOn) > 0 {
		fmt.Fprintf(w, "     depends on: %s\n", strings.Join(p.DependsOn, ", "))
	}
	if p.RouteTo != "" {
		fmt.Fprintf(w, "     routes to: %s\n", p.RouteTo)
	}
	if p.Team != "" {
		fmt.Fprintf(w, "     team: %s\n", p.Team)
	}
	for _, c := range p.Commands {
		fmt.Fprintf(w, "     command %s: %s\n", c.Name, firstCommandLine(c.Run))
	}
	if p.Role != "" {
		state := "missing"
		if p.RoleText != "" {
			state = fmt.Sprintf("%d lines", strings.Count(strings.TrimRight(p.RoleText, "\n"), "\n")+1)
		}
		fmt.Fprintf(w, "     role: roles/%s.md (%s)\n", p.Role, state)
	}
}

// firstCommandLine shortens a multi-line shell command to its first line
// and its line count.
func firstCommandLine(run string) string {
	run = strings.TrimSpace(run)
	if first, _, multi := strings.Cut(run, "\n"); multi {
		return fmt.Sprintf("%s ... (%d lines)", first, strings.Count(run, "\n")+1)
	}
	return run
}

const teamNewUsage = `
Usage: cliq team new NAME [--json]

Creates $CLIQ_HOME/teams/@scope/name with a team.yml holding one exec phase
and an empty roles/ directory. The new team validates and runs as it is;
edit team.yml to add phases. A bare NAME means @local/NAME. The @cliq
scope is reserved for built-in teams.

Examples:
  cliq team new blog-pipeline
  cliq team new @acme/deploy
`

func runTeamNew(env *Env, args []string) error {
	var asJSON *bool
	pos, home, _, err := teamArgs(env, "new", teamNewUsage, args, 1, func(fs *flag.FlagSet) {
		asJSON = fs.Bool("json", false, "print the new team's summary as JSON")
	})
	if err != nil {
		return err
	}
	s, err := teams.Create(home, pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(env.Stdout, s)
	}
	fmt.Fprintf(env.Stdout, "Created %s in %s\n", s.Name, s.Path)
	fmt.Fprintf(env.Stdout, "Next: edit %s, then cliq team validate %s\n", filepath.Join(s.Path, "team.yml"), s.Name)
	return nil
}

const teamCopyUsage = `
Usage: cliq team copy SOURCE NAME [--json]

Copies the team SOURCE (built-in, installed, or @project for the team
assembled into the current project) to $CLIQ_HOME/teams under NAME, and
sets the name in the copy's team.yml. A bare NAME means @local/NAME.

Examples:
  cliq team copy @cliq/feature my-feature
  cliq team copy @project @acme/tuned
`

func runTeamCopy(env *Env, args []string) error {
	var asJSON *bool
	pos, home, project, err := teamArgs(env, "copy", teamCopyUsage, args, 2, func(fs *flag.FlagSet) {
		asJSON = fs.Bool("json", false, "print the copy's summary as JSON")
	})
	if err != nil {
		return err
	}
	s, err := teams.Copy(home, project, pos[0], pos[1])
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(env.Stdout, s)
	}
	fmt.Fprintf(env.Stdout, "Copied %s to %s in %s\n", pos[0], s.Name, s.Path)
	return nil
}

const teamDeleteUsage = `
Usage: cliq team delete NAME

Deletes the installed team NAME from $CLIQ_HOME/teams. A bare NAME means
@local/NAME. Built-in teams cannot be deleted, and projects that assembled
the team keep their copy.
`

func runTeamDelete(env *Env, args []string) error {
	pos, home, _, err := teamArgs(env, "delete", teamDeleteUsage, args, 1, nil)
	if err != nil {
		return err
	}
	if err := teams.Delete(home, pos[0]); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Deleted %s\n", pos[0])
	return nil
}

const teamValidateUsage = `
Usage: cliq team validate NAME|DIR [--json]

Checks a team: team.yml, the role file of every phase that needs one, and
for an installed team that team.yml names the team it is installed as.
The argument is a directory when it starts with '.' or contains '/' without
starting with '@'; otherwise it is a team name. Exits 1 when the team has
problems. --json prints the same object as the /teams/validate/ endpoint.

Examples:
  cliq team validate @local/blog-pipeline
  cliq team validate ./my-team
`

func runTeamValidate(env *Env, args []string) error {
	var asJSON *bool
	pos, home, project, err := teamArgs(env, "validate", teamValidateUsage, args, 1, func(fs *flag.FlagSet) {
		asJSON = fs.Bool("json", false, "print the result as JSON")
	})
	if err != nil {
		return err
	}
	var res *teams.ValidationResult
	if isDirArg(pos[0]) {
		res, err = teams.ValidateDir(absPath(env.Dir, pos[0]))
	} else {
		res, err = teams.Validate(home, project, pos[0])
	}
	if err != nil {
		return err
	}

	label := res.Name
	if label == "" {
		label = pos[0]
	}
	if *asJSON {
		if err := writeJSON(env.Stdout, res); err != nil {
			return err
		}
	} else if res.Valid {
		fmt.Fprintf(env.Stdout, "%s is valid\n", label)
	} else {
		for _, e := range res.Errors {
			fmt.Fprintln(env.Stdout, formatProblem(e))
		}
	}
	if !res.Valid {
		return &exitError{code: ExitFailure, msg: fmt.Sprintf("%s is invalid: %d problem(s)", label, len(res.Errors))}
	}
	return nil
}

// isDirArg reports whether a validate argument names a directory rather
// than a team.
func isDirArg(arg string) bool {
	if strings.HasPrefix(arg, "@") {
		return false
	}
	return filepath.IsAbs(arg) || strings.HasPrefix(arg, ".") || strings.ContainsAny(arg, `/\`)
}

// formatProblem formats one validation problem as
// `team.yml:12: phase "x": field: message`.
func formatProblem(e teams.ValidationError) string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Phase != "" {
		fmt.Fprintf(&b, ": phase %q", e.Phase)
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Message)
	return strings.TrimPrefix(b.String(), ": ")
}

const teamInstallUsage = `
Usage: cliq team install DIR [--force] [--json]

Validates the team in DIR and copies it to $CLIQ_HOME/teams/@scope/name,
where @scope/name is the name in its team.yml. An installed team of another
version is replaced; one of the same version only with --force. Hidden
files are not copied; symbolic links are rejected.

Examples:
  cliq team install ./teams/review
  cliq team install ./teams/review --force
`

func runTeamInstall(env *Env, args []string) error {
	var asJSON, force *bool
	pos, home, _, err := teamArgs(env, "install", teamInstallUsage, args, 1, func(fs *flag.FlagSet) {
		force = fs.Bool("force", false, "replace an installed team of the same version")
		asJSON = fs.Bool("json", false, "print the result as JSON")
	})
	if err != nil {
		return err
	}
	res, err := teams.Install(home, absPath(env.Dir, pos[0]), *force)
	if err != nil {
		return err
	}
	switch {
	case *asJSON:
		return writeJSON(env.Stdout, res)
	case res.Replaced:
		fmt.Fprintf(env.Stdout, "Installed %s %s, replacing version %s\n", res.Name, orDash(res.Version),
			orDash(res.PreviousVersion))
	default:
		fmt.Fprintf(env.Stdout, "Installed %s %s\n", res.Name, orDash(res.Version))
	}
	return nil
}
