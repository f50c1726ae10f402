package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"cliq/settings"
)

// Names inside a project's .cliq directory that the definition side owns.
const (
	// ProjectDirName is the directory of cliq state inside a project.
	ProjectDirName = ".cliq"
	// RequirementFileName holds the requirement written by cliq req.
	RequirementFileName = "req_spec.md"
	// InputsFileName holds the team input values given to cliq req, as a
	// JSON object of strings.
	InputsFileName = "inputs.json"
	// TeamsDirName is the directory of installed teams inside CLIQ_HOME.
	TeamsDirName = "teams"
)

var (
	// ErrNotAssembled means the project has no team in .cliq/team.yml.
	ErrNotAssembled = errors.New("no team assembled")
	// ErrInvalidTeamRef means a team reference is malformed or escapes
	// CLIQ_HOME/teams.
	ErrInvalidTeamRef = errors.New("invalid team reference")
	// ErrInvalidRequirement means a requirement or its inputs are
	// incomplete or inconsistent with the assembled team.
	ErrInvalidRequirement = errors.New("invalid requirement")
)

// ResolveTeamRef returns the team directory that ref names.
//
//   - "@scope/name" is a team installed in home/teams/@scope/name.
//   - Anything else is a directory path, relative to cwd unless absolute,
//     that contains team.yml. Write "./@scope/name" for a local directory
//     whose name starts with '@'.
//   - A bare name without a slash that is not a directory falls back to the
//     installed team @local/<name>.
//
// A malformed scoped name, a ".." segment in it or a remote hub:// reference
// wraps ErrInvalidTeamRef; a reference that names no team wraps
// ErrTeamNotFound.
func ResolveTeamRef(home, cwd, ref string) (string, error) {
	switch {
	case strings.TrimSpace(ref) == "":
		return "", fmt.Errorf("%w: %q is empty (pass a team directory or @scope/name)", ErrInvalidTeamRef, ref)
	case strings.Contains(ref, "://"):
		return "", fmt.Errorf("%w: %q: remote teams are not supported (install the team under %s and use "+
			"@scope/name)", ErrInvalidTeamRef, ref, filepath.Join("CLIQ_HOME", TeamsDirName))
	case strings.HasPrefix(ref, "@"):
		return installedTeamDir(home, ref)
	}

	dir := ref
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(cwd, dir)
	}
	if isTeamDir(dir) {
		return dir, nil
	}
	if !strings.ContainsAny(ref, `/\`) && ref != "." && ref != ".." && identRE.MatchString(ref) {
		if local, err := installedTeamDir(home, "@local/"+ref); err == nil {
			return local, nil
		}
	}
	if info, err := os.Stat(dir); err == nil && info.IsDir() {
		return "", fmt.Errorf("%w: directory %s has no %s (pass the directory that contains %s)",
			ErrTeamNotFound, ref, TeamFileName, TeamFileName)
	}
	return "", fmt.Errorf("%w: %q is neither a team directory nor an installed team (pass a directory "+
		"containing %s, or @scope/name installed under %s)", ErrTeamNotFound, ref, TeamFileName,
		filepath.Join("CLIQ_HOME", TeamsDirName))
}

// installedTeamDir checks the scoped name ref and returns its directory
// under home/teams.
func installedTeamDir(home, ref string) (string, error) {
	if err := CheckTeamName(ref); err != nil {
		return "", err
	}
	root := filepath.Join(home, TeamsDirName)
	dir := filepath.Join(root, filepath.FromSlash(ref))
	if rel, err := filepath.Rel(root, dir); err != nil || !filepath.IsLocal(rel) {
		return "", fmt.Errorf("%w: %q resolves outside %s", ErrInvalidTeamRef, ref, TeamsDirName)
	}
	if !isTeamDir(dir) {
		return "", fmt.Errorf("%w: %s is not installed (no %s in %s): install it, or pass a team directory",
			ErrTeamNotFound, ref, TeamFileName, filepath.Join("CLIQ_HOME", TeamsDirName, filepath.FromSlash(ref)))
	}
	return dir, nil
}

// CheckTeamName returns an error wrapping ErrInvalidTeamRef unless name is a
// scoped team name "@scope/name" that is safe to use as a path below
// CLIQ_HOME/teams. Scope and name contain letters, digits, '.', '_' or '-'
// and start with a letter or digit, so neither can be "." or "..".
func CheckTeamName(name string) error {
	if !teamNameRE.MatchString(name) {
		return fmt.Errorf(`%w: %q (want "@scope/name", e.g. @local/hello-world, with letters, digits, `+
			`'.', '_' or '-' in each part)`, ErrInvalidTeamRef, name)
	}
	return nil
}

func isTeamDir(dir string) bool {
	info, err := os.Stat(filepath.Join(dir, TeamFileName))
	return err == nil && info.Mode().IsRegular()
}

// LoadProjectTeam loads the team assembled in projectDir/.cliq. It wraps
// ErrNotAssembled when there is none.
func LoadProjectTeam(projectDir string) (*Team, error) {
	dir := filepath.Join(projectDir, ProjectDirName)
	if !isTeamDir(dir) {
		return nil, fmt.Errorf("%w in %s (run cliq assemble TEAM first)", ErrNotAssembled, projectDir)
	}
	return LoadTeam(dir)
}

// Assemble validates the team in teamDir and copies its team.yml and
// roles/*.md into projectDir/.cliq, creating .cliq when it is missing. The
// sub-teams that its team phases name by path are copied too, into
// .cliq/subteams/<phase>/, so the assembled team runs without its source
// directory. A previously assembled team is replaced completely, stale
// roles included. Nothing is written when the team is invalid or includes
// itself by path (ErrTeamCycle). The returned team is the one now
// assembled, with Dir set to projectDir/.cliq.
func Assemble(projectDir, teamDir string) (*Team, error) {
	team, err := LoadTeam(teamDir)
	if err != nil {
		return nil, err
	}
	cliqDir := filepath.Join(projectDir, ProjectDirName)
	if err := os.MkdirAll(cliqDir, 0o755); err != nil {
		return nil, fmt.Errorf("assemble: %w", err)
	}

	stage, err := os.MkdirTemp(cliqDir, ".assemble-")
	if err != nil {
		return nil, fmt.Errorf("assemble: %w", err)
	}
	defer os.RemoveAll(stage)
	if err := stageTeam(stage, teamDir); err != nil {
		return nil, fmt.Errorf("assemble: %w", err)
	}
	if err := stageSubTeams(stage, team, []string{team.Name}); err != nil {
		return nil, fmt.Errorf("assemble: %w", err)
	}
	if err := swapTeam(cliqDir, stage); err != nil {
		return nil, fmt.Errorf("assemble: %w", err)
	}
	return LoadTeam(cliqDir)
}

// stageTeam copies team.yml and roles/*.md of teamDir into stage.
func stageTeam(stage, teamDir string) error {
	if err := copyFile(filepath.Join(teamDir, TeamFileName), filepath.Join(stage, TeamFileName)); err != nil {
		return err
	}
	rolesDir := filepath.Join(stage, RolesDirName)
	if err := os.Mkdir(rolesDir, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Join(teamDir, RolesDirName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || filepath.Ext(e.Name()) != ".md" {
			continue
		}
		src := filepath.Join(teamDir, RolesDirName, e.Name())
		if err := copyFile(src, filepath.Join(rolesDir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}

// swapTeam moves the staged roles directory, the staged sub-teams and
// team.yml into cliqDir. The roles and sub-teams go first, so a reader
// never sees the new team.yml with the old roles. Each rename is atomic,
// but the sequence is not.
func swapTeam(cliqDir, stage string) error {
	roles := filepath.Join(cliqDir, RolesDirName)
	old := filepath.Join(stage, "old-roles")
	hadRoles := true
	if err := os.Rename(roles, old); errors.Is(err, fs.ErrNotExist) {
		hadRoles = false
	} else if err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(stage, RolesDirName), roles); err != nil {
		if hadRoles {
			_ = os.Rename(old, roles)
		}
		return err
	}
	if err := swapSubTeams(cliqDir, stage); err != nil {
		if hadRoles && os.Rename(roles, filepath.Join(stage, "new-roles")) == nil {
			_ = os.Rename(old, roles)
		}
		return err
	}
	if err := os.Rename(filepath.Join(stage, TeamFileName), filepath.Join(cliqDir, TeamFileName)); err != nil {
		// Put the old roles back so that they match the old team.yml.
		if hadRoles && os.Rename(roles, filepath.Join(stage, "new-roles")) == nil {
			_ = os.Rename(old, roles)
		}
		return err
	}
	return nil
}

// WriteRequirement checks the requirement against the team assembled in
// projectDir, then writes text to .cliq/req_spec.md and inputs to
// .cliq/inputs.json, each atomically. The team must load and validate
// (so every phase whose agent is not exec has its role file), text must
// not be blank, every declared input needs a non-empty value and every key
// of inputs must be declared. Problems wrap ErrInvalidRequirement, and
// nothing is written then.
func WriteRequirement(projectDir, text string, inputs map[string]string) error {
	t, err := LoadProjectTeam(projectDir)
	if err != nil {
		return err
	}
	if strings.TrimSpace(text) == "" {
		return fmt.Errorf("%w: the requirement is empty (pass -m TEXT or a non-empty file)", ErrInvalidRequirement)
	}
	if err := checkInputValues(t, inputs); err != nil {
		return err
	}

	if inputs == nil {
		inputs = map[string]string{}
	}
	data, err := json.MarshalIndent(inputs, "", "  ")
	if err != nil {
		return fmt.Errorf("write inputs: %w", err)
	}
	cliqDir := filepath.Join(projectDir, ProjectDirName)
	if err := settings.WriteAtomic(filepath.Join(cliqDir, InputsFileName), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write inputs: %w", err)
	}
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	if err := settings.WriteAtomic(filepath.Join(cliqDir, RequirementFileName), []byte(text), 0o644); err != nil {
		return fmt.Errorf("write requirement: %w", err)
	}
	return nil
}

// checkInputValues reports missing, empty and undeclared inputs in one
// error.
func checkInputValues(t *Team, inputs map[string]string) error {
	declared := map[string]bool{}
	var missing, problems []string
	for _, in := range t.Inputs {
		declared[in.Name] = true
		switch v, ok := inputs[in.Name]; {
		case !ok:
			missing = append(missing, in.Name)
		case strings.TrimSpace(v) == "":
			problems = append(problems, fmt.Sprintf("input %q is empty (give it a value)", in.Name))
		}
	}
	if len(missing) > 0 {
		flags := make([]string, len(missing))
		for i, name := range missing {
			flags[i] = "--input " + name + "=VALUE"
		}
		problems = append(problems, fmt.Sprintf("missing input %s (pass %s)",
			strings.Join(missing, ", "), strings.Join(flags, " ")))
	}
	var unknown []string
	for name := range inputs {
		if !declared[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		problems = append(problems, fmt.Sprintf("unknown input %s (team %s declares: %s)",
			strings.Join(unknown, ", "), t.Name, declaredList(t)))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidRequirement, strings.Join(problems, "; "))
	}
	return nil
}

func declaredList(t *Team) string {
	if len(t.Inputs) == 0 {
		return "none"
	}
	names := make([]string, len(t.Inputs))
	for i, in := range t.Inputs {
		names[i] = in.Name
	}
	return strings.Join(names, ", ")
}

// ReadInputs returns the input values stored by WriteRequirement. A missing
// file is an empty map.
func ReadInputs(projectDir string) (map[string]string, error) {
	path := filepath.Join(projectDir, ProjectDirName, InputsFileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read inputs: %w", err)
	}
	inputs := map[string]string{}
	if err := json.Unmarshal(data, &inputs); err != nil {
		return nil, fmt.Errorf("read inputs: %s: invalid JSON object of strings: %w (run cliq req again)", path, err)
	}
	return inputs, nil
}

// ReadRequirement returns the content of .cliq/req_spec.md. The error for a
// missing file wraps fs.ErrNotExist and asks the user to run cliq req.
func ReadRequirement(projectDir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(projectDir, ProjectDirName, RequirementFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no requirement in %s: %w (run cliq req -m TEXT first)", projectDir, err)
	}
	if err != nil {
		return "", fmt.Errorf("read requirement: %w", err)
	}
	return string(data), nil
}

// ParseInputs turns --input flag values of the form key=value into a map.
// The value may contain '='. A repeated, empty or invalid key, or a flag
// value without '=', is an error that names the flag value.
func ParseInputs(values []string) (map[string]string, error) {
	inputs := make(map[string]string, len(values))
	for _, kv := range values {
		key, value, ok := strings.Cut(kv, "=")
		key = strings.TrimSpace(key)
		switch {
		case !ok || key == "":
			return nil, fmt.Errorf("%w: --input %q: want name=value", ErrInvalidRequirement, kv)
		case !inputNameRE.MatchString(key):
			return nil, fmt.Errorf("%w: --input %q: invalid input name %q (use letters, digits, '_' or '-')",
				ErrInvalidRequirement, kv, key)
		}
		if _, dup := inputs[key]; dup {
			return nil, fmt.Errorf("%w: --input %q: input %q is given twice (pass it once)",
				ErrInvalidRequirement, kv, key)
		}
		inputs[key] = value
	}
	return inputs, nil
}
