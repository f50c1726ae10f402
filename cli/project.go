package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"cliq/pipeline"
	"cliq/settings"
	"cliq/store"
	"cliq/teams"
)

// DatabaseURLEnv names the environment variable that selects the database,
// overriding database.url in the global settings.
const DatabaseURLEnv = "CLIQ_DATABASE_URL"

const initUsage = `
Usage: cliq init [DIR]

Creates DIR/.cliq/ (DIR defaults to the current directory) with an instance
id and project settings, and registers the instance in the registry.
Running it again keeps the id and refreshes the registry entry.

Examples:
  cliq init
  cliq init ./my-project
`

func runInit(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "init", initUsage)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usagef("init takes at most one directory, got %d arguments", len(pos))
	}
	dir := env.Dir
	if len(pos) == 1 {
		dir = absPath(env.Dir, pos[0])
	}
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("project directory %s: %w", dir, err)
	}
	if !info.IsDir() {
		return fmt.Errorf("project directory %s is not a directory", dir)
	}

	home, global, err := loadGlobal()
	if err != nil {
		return err
	}
	id, created, err := ensureInstanceID(dir, settings.String(global, "id_prefix", "cliq"))
	if err != nil {
		return err
	}

	db, err := openStore(ctx, home, global, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	inst := store.Instance{ID: id, Name: filepath.Base(dir), ProjectDir: dir}
	if err := db.PutInstance(ctx, inst); err != nil {
		return fmt.Errorf("register instance %s: %w", id, err)
	}

	if created {
		fmt.Fprintf(env.Stdout, "Initialized instance %s in %s\n", id, dir)
	} else {
		fmt.Fprintf(env.Stdout, "Instance %s already initialized in %s; registry entry refreshed\n", id, dir)
	}
	fmt.Fprint(env.Stdout, "Next: cliq assemble TEAM\n")
	return nil
}

var instanceIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,40}-[0-9a-f]{6}$`)
var idPrefixPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,40}$`)

// ensureInstanceID creates .cliq/ with cliq.id and settings.json unless they
// exist. It reports whether the id was created now.
func ensureInstanceID(dir, prefix string) (string, bool, error) {
	cliqDir := filepath.Join(dir, ".cliq")
	if err := os.MkdirAll(cliqDir, 0o755); err != nil {
		return "", false, fmt.Errorf("create %s: %w", cliqDir, err)
	}
	if _, err := os.Stat(settings.ProjectPath(dir)); errors.Is(err, fs.ErrNotExist) {
		if err := settings.WriteFile(settings.ProjectPath(dir), settings.Map{}); err != nil {
			return "", false, fmt.Errorf("write project settings: %w", err)
		}
	}
	idPath := filepath.Join(cliqDir, "cliq.id")
	if data, err := os.ReadFile(idPath); err == nil {
		id := strings.TrimSpace(string(data))
		if !instanceIDPattern.MatchString(id) {
			return "", false, fmt.Errorf("%s contains %q, which is not an instance id; delete the file and run cliq init again", idPath, id)
		}
		return id, false, nil
	}
	if !idPrefixPattern.MatchString(prefix) {
		return "", false, fmt.Errorf("setting id_prefix %q is invalid: use lowercase letters, digits, '-' and '_'", prefix)
	}
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", false, err
	}
	id := prefix + "-" + hex.EncodeToString(b[:])
	if err := settings.WriteAtomic(idPath, []byte(id+"\n"), 0o644); err != nil {
		return "", false, fmt.Errorf("write %s: %w", idPath, err)
	}
	return id, true, nil
}

const assembleUsage = `
Usage: cliq assemble TEAM

Validates a team and copies its team.yml and roles into the project's .cliq/
directory, replacing any team assembled before. TEAM is a directory holding
team.yml, @scope/name for a built-in (@cliq) or installed team, or a bare
name, looked up in ./NAME, @local, @cliq, then any other installed scope.

Examples:
  cliq assemble ./testdata/teams/demo
  cliq assemble @cliq/hello-world
  cliq assemble blog-pipeline
`

func runAssemble(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "assemble", assembleUsage)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("assemble needs exactly one TEAM (a directory or @scope/name); see 'cliq assemble -h'")
	}
	project, err := findProject(env.Dir)
	if err != nil {
		return err
	}
	home, err := settings.Home()
	if err != nil {
		return err
	}
	teamDir, err := teams.Resolve(home, env.Dir, pos[0])
	if err != nil {
		return err
	}
	if err := checkTeamDir(teamDir, pos[0]); err != nil {
		return err
	}
	team, err := pipeline.Assemble(project, teamDir)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Assembled %s (%d phases) into %s\n", team.Name, len(team.Workflow.Phases), filepath.Join(project, ".cliq"))
	fmt.Fprint(env.Stdout, "Next: cliq req -m \"what to build\"\n")
	return nil
}

// checkTeamDir validates the team in teamDir with the library, sub-teams
// included. Its problems, formatted as cliq team validate prints them,
// make up the error, one a line. ref names the team in the error.
func checkTeamDir(teamDir, ref string) error {
	res, err := teams.ValidateDir(teamDir)
	if err != nil {
		return err
	}
	if res.Valid {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s is invalid: %d problem(s); nothing assembled (fix them; cliq team validate %s checks "+
		"again):", ref, len(res.Errors), ref)
	for _, e := range res.Errors {
		b.WriteString("\n  " + formatProblem(e))
	}
	return &exitError{code: ExitFailure, msg: b.String()}
}

// checkProjectSubTeams loads the team assembled in project and checks its
// sub-teams: each must be found and load, and none may include a team of
// the chain again.
func checkProjectSubTeams(project string) error {
	home, err := settings.Home()
	if err != nil {
		return err
	}
	t, err := pipeline.LoadProjectTeam(project)
	if err != nil {
		return err
	}
	resolve := func(base, ref string) (string, error) { return teams.Resolve(home, base, ref) }
	if err := pipeline.CheckSubTeams(t, resolve); err != nil {
		return fmt.Errorf("%w (requirement not written; fix the team and run cliq assemble again)", err)
	}
	return nil
}

const reqUsage = `
Usage: cliq req -m TEXT [--input KEY=VALUE ...]
       cliq req FILE [--input KEY=VALUE ...]

Sets the requirement of the next run: writes .cliq/req_spec.md from TEXT or
from FILE, stores the team's inputs, and checks that every agent phase has a
role and every input declared by the team has a value.

Examples:
  cliq req -m "Add a /health endpoint"
  cliq req requirements.md --input component=api
`

func runReq(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "req", reqUsage)
	message := fs.String("m", "", "the requirement `text`")
	var inputs stringList
	fs.Var(&inputs, "input", "a team input as `key=value` (repeatable)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	text, err := requirementText(env, *message, pos)
	if err != nil {
		return err
	}
	values, err := parseInputs(inputs)
	if err != nil {
		return err
	}
	project, err := findProject(env.Dir)
	if err != nil {
		return err
	}
	if err := checkProjectSubTeams(project); err != nil {
		return err
	}
	if err := pipeline.WriteRequirement(project, text, values); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Requirement written to %s\n", filepath.Join(project, ".cliq", "req_spec.md"))
	fmt.Fprint(env.Stdout, "Next: cliq run\n")
	return nil
}

func requirementText(env *Env, message string, pos []string) (string, error) {
	switch {
	case message != "" && len(pos) > 0:
		return "", usagef("give the requirement either with -m or as a FILE, not both")
	case message != "":
		return message, nil
	case len(pos) == 1:
		data, err := os.ReadFile(absPath(env.Dir, pos[0]))
		if err != nil {
			return "", fmt.Errorf("read requirement file: %w", err)
		}
		if strings.TrimSpace(string(data)) == "" {
			return "", fmt.Errorf("requirement file %s is empty", pos[0])
		}
		return string(data), nil
	case len(pos) > 1:
		return "", usagef("req takes one FILE, got %d arguments", len(pos))
	default:
		return "", usagef("req needs a requirement: -m TEXT or a FILE; see 'cliq req -h'")
	}
}

func parseInputs(list []string) (map[string]string, error) {
	values := map[string]string{}
	for _, kv := range list {
		key, value, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(key) == "" {
			return nil, usagef("--input %q is not KEY=VALUE", kv)
		}
		values[strings.TrimSpace(key)] = value
	}
	return values, nil
}

const statusUsage = `
Usage: cliq status [--json]

Shows the state of the project's current or last run: its status, team,
times, reason and each phase.
`

func runStatus(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "status", statusUsage)
	asJSON := fs.Bool("json", false, "print run.json as JSON")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	project, err := findProject(env.Dir)
	if err != nil {
		return err
	}
	state, err := pipeline.ReadState(project)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(env.Stdout, state)
	}
	printState(env.Stdout, state)
	return nil
}

const cleanUsage = `
Usage: cliq clean

Removes the instance from the registry and deletes the run state in .cliq/
(run.json, events.jsonl, orchestrator.log, signals/, channels/, files/).
The project's own files, the assembled team, the requirement, the settings
and the instance id stay, so 'cliq init' registers the same id again.
`

// runStateFiles lists what clean removes from .cliq/.
var runStateFiles = []string{"run.json", "events.jsonl", "orchestrator.log", "run.lock", "signals", "channels", "files"}

func runClean(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "clean", cleanUsage)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	project, err := findProject(env.Dir)
	if err != nil {
		return err
	}
	state, err := pipeline.ReadState(project)
	if err != nil {
		return err
	}
	if state.Status == pipeline.StatusRunning && processAlive(state.PID) {
		return fmt.Errorf("run %s is active (pid %d); cancel it before cleaning", state.RunID, state.PID)
	}
	id, err := readInstanceID(project)
	if err != nil {
		return err
	}

	home, global, err := loadGlobal()
	if err != nil {
		return err
	}
	db, err := openStore(ctx, home, global, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	switch err := db.RemoveInstance(ctx, id); {
	case err == nil:
		fmt.Fprintf(env.Stdout, "Removed registry entry %s\n", id)
	case errors.Is(err, store.ErrNotFound):
		fmt.Fprintf(env.Stdout, "Registry entry %s was already gone\n", id)
	default:
		return fmt.Errorf("remove registry entry %s: %w", id, err)
	}

	removed := 0
	for _, name := range runStateFiles {
		path := filepath.Join(project, ".cliq", name)
		if _, err := os.Lstat(path); err != nil {
			continue
		}
		if err := os.RemoveAll(path); err != nil {
			return fmt.Errorf("remove %s: %w", path, err)
		}
		fmt.Fprintf(env.Stdout, "Removed .cliq/%s\n", name)
		removed++
	}
	if removed == 0 {
		fmt.Fprint(env.Stdout, "No run state to remove\n")
	}
	return nil
}

// findProject returns the nearest directory at or above dir that holds
// .cliq/cliq.id.
func findProject(dir string) (string, error) {
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, ".cliq", "cliq.id")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no cliq project in %s or its parents; run 'cliq init' first", dir)
		}
		d = parent
	}
}

func readInstanceID(project string) (string, error) {
	data, err := os.ReadFile(filepath.Join(project, ".cliq", "cliq.id"))
	if err != nil {
		return "", fmt.Errorf("read instance id: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// loadGlobal returns the home directory and the global settings, creating
// an empty global settings file on first use.
func loadGlobal() (string, settings.Map, error) {
	home, err := settings.Home()
	if err != nil {
		return "", nil, err
	}
	path := settings.GlobalPath(home)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := settings.WriteFile(path, settings.Map{}); err != nil {
			return "", nil, fmt.Errorf("create global settings: %w", err)
		}
	}
	global, err := settings.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	return home, global, nil
}

// databaseURL returns the database to use: CLIQ_DATABASE_URL, else
// database.url from the global settings, else the SQLite file in home.
func databaseURL(home string, global settings.Map) string {
	if url := os.Getenv(DatabaseURLEnv); url != "" {
		return url
	}
	if url := settings.String(global, "database.url", ""); url != "" {
		return url
	}
	return filepath.Join(home, "cliq.db")
}

// openStore opens the database that databaseURL selects. The store logs
// to logger; nil discards its lines, as the project commands report to the
// terminal instead.
func openStore(ctx context.Context, home string, global settings.Map, logger *slog.Logger) (*store.DB, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	db, err := store.OpenWithOptions(ctx, databaseURL(home, global), store.Options{Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return db, nil
}

func absPath(base, path string) string {
	if filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	return filepath.Join(base, path)
}
