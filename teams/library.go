package teams

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"cliq/pipeline"
)

// source is one team of the library: its name and where its files are.
type source struct {
	// name is @scope/name, or the name in team.yml for the project's team.
	name    string
	scope   string
	builtin bool
	// dir is the team directory on disk, empty for a built-in team.
	dir  string
	fsys fs.FS
}

func dirSource(name, scope, dir string) *source {
	return &source{name: name, scope: scope, dir: dir, fsys: os.DirFS(dir)}
}

// List returns every team of the library: the built-in teams, the installed
// teams of every scope sorted by name, and, when projectDir is not empty
// and has a team assembled, that team with scope "project". A team whose
// team.yml is broken is listed with Error set rather than failing the list.
func List(home, projectDir string) ([]Summary, error) {
	var out []Summary
	for _, name := range BuiltinNames() {
		src, _ := builtinSource(path.Base(name))
		out = append(out, summarize(src))
	}

	installed, err := installedSources(home)
	if err != nil {
		return nil, err
	}
	for _, src := range installed {
		out = append(out, summarize(src))
	}

	if projectDir != "" {
		if src, ok := projectSource(projectDir); ok {
			out = append(out, summarize(src))
		}
	}
	return out, nil
}

// installedSources returns the teams under CLIQ_HOME/teams/@scope/name,
// sorted by name. Directories whose names are not valid team names, and
// installed @cliq teams that a built-in team of the same name hides, are
// left out.
func installedSources(home string) ([]*source, error) {
	root := teamsRoot(home)
	scopes, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list teams: %w", err)
	}
	var out []*source
	for _, s := range scopes {
		scope, ok := strings.CutPrefix(s.Name(), "@")
		if !ok || !s.IsDir() || !validPart(scope) {
			continue
		}
		bases, err := os.ReadDir(filepath.Join(root, s.Name()))
		if err != nil {
			return nil, fmt.Errorf("list teams: %w", err)
		}
		for _, b := range bases {
			dir := filepath.Join(root, s.Name(), b.Name())
			if !b.IsDir() || !validPart(b.Name()) || !isTeamDir(dir) {
				continue
			}
			if _, hidden := builtinSource(b.Name()); hidden && scope == BuiltinScope {
				continue
			}
			out = append(out, dirSource("@"+scope+"/"+b.Name(), scope, dir))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// projectSource returns the team assembled in projectDir/.cliq, if any.
func projectSource(projectDir string) (*source, bool) {
	dir := filepath.Join(projectDir, pipeline.ProjectDirName)
	if !isTeamDir(dir) {
		return nil, false
	}
	src := dirSource(ProjectRef, ProjectScope, dir)
	if t, _, _ := readTeam(src); t != nil && t.Name != "" {
		src.name = t.Name
	}
	return src, true
}

// readTeam reads team.yml of src. When the file parses and validates
// (without role files), it returns the normalized team and a nil problem.
// Otherwise it returns what a lenient decode could read, which may be nil,
// and the problem. err is set only when the file cannot be read.
func readTeam(src *source) (t *pipeline.Team, problem error, err error) {
	if info, err := fs.Stat(src.fsys, pipeline.TeamFileName); err == nil {
		if msg := sizeProblem(pipeline.TeamFileName, info.Size()); msg != "" {
			return nil, fmt.Errorf("%w: %s", pipeline.ErrInvalidTeam, msg), nil
		}
	}
	data, err := fs.ReadFile(src.fsys, pipeline.TeamFileName)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s of team %s: %w", pipeline.TeamFileName, src.name, err)
	}
	t, problem = pipeline.ParseTeam(pipeline.TeamFileName, data)
	if problem == nil {
		return t, nil, nil
	}
	var raw pipeline.Team
	if yaml.Unmarshal(data, &raw) != nil {
		return nil, problem, nil
	}
	return &raw, problem, nil
}

// summarize reads the summary of src. Problems go into Summary.Error.
func summarize(src *source) Summary {
	s := Summary{Name: src.name, Scope: src.scope, Builtin: src.builtin, Path: src.dir}
	ref := src.name
	if src.scope == ProjectScope {
		ref = ProjectRef
	}
	t, problem, err := readTeam(src)
	switch {
	case err != nil:
		s.Error = err.Error()
	case problem != nil:
		s.Error = fmt.Sprintf("invalid team definition (run cliq team validate %s): %s", ref, firstLine(problem))
	}
	if t != nil {
		s.Description = t.Description
		s.Version = t.Version
		s.PhaseCount = len(t.Workflow.Phases)
	}
	return s
}

func firstLine(err error) string {
	line, _, _ := strings.Cut(err.Error(), "\n")
	return line
}

// Get returns the team that name refers to, with every phase and the text
// of its role file. name is looked up as Resolve describes for the library
// (see find). A team whose team.yml has problems is still returned, with
// Summary.Error set and the fields that could be read. When team.yml is
// not YAML at all, the result has no phases.
func Get(home, projectDir, name string) (*Detail, error) {
	src, err := find(home, projectDir, name)
	if err != nil {
		return nil, err
	}
	t, _, err := readTeam(src)
	if err != nil {
		return nil, err
	}
	d := &Detail{Summary: summarize(src), Inputs: []Param{}, Outputs: []Param{},
		UseWhen: []string{}, NotFor: []string{}, Phases: []PhaseDetail{}}
	if t == nil {
		return d, nil
	}
	for _, in := range t.Inputs {
		d.Inputs = append(d.Inputs, Param{Name: in.Name, Description: in.Description})
	}
	for _, o := range t.Outputs {
		d.Outputs = append(d.Outputs, Param{Name: o.Name, Description: o.Description})
	}
	d.UseWhen = append(d.UseWhen, t.UseWhen...)
	d.NotFor = append(d.NotFor, t.NotFor...)
	for i := range t.Workflow.Phases {
		d.Phases = append(d.Phases, phaseDetail(src, &t.Workflow.Phases[i]))
	}
	return d, nil
}

// phaseDetail converts one phase, reading its role file from src.
func phaseDetail(src *source, p *pipeline.Phase) PhaseDetail {
	pd := PhaseDetail{Name: p.Name, Type: p.Type, Agent: p.Agent, DependsOn: []string{},
		Commands: []CommandDetail{}, MaxIterations: p.MaxIterations, RouteTo: p.RouteTo,
		Team: p.Team, TeamInputs: p.TeamInputs}
	pd.DependsOn = append(pd.DependsOn, p.DependsOn...)
	for _, c := range p.Commands {
		pd.Commands = append(pd.Commands, CommandDetail{Name: c.Name, Run: c.Run, If: c.If,
			EscalateOnFail: c.EscalateOnFail, Timeout: c.Timeout})
	}
	if p.NeedsRole() {
		pd.Role = p.Role
		if pd.Role == "" {
			pd.Role = p.Name
		}
		if validPart(pd.Role) {
			data, err := fs.ReadFile(src.fsys, path.Join(pipeline.RolesDirName, pd.Role+".md"))
			if err == nil {
				pd.RoleText = string(data)
			}
		}
	}
	return pd
}

// find looks name up in the library:
//
//   - "@project" is the team assembled in projectDir.
//   - "@cliq/name" is the built-in team, else an installed one.
//   - "@scope/name" is the team installed in CLIQ_HOME/teams/@scope/name.
//   - a bare "name" is tried as @local/name, then as the built-in
//     @cliq/name, then in the other installed scopes, which must not hold
//     more than one team of that name.
//
// When none of these exist and projectDir has a team assembled whose name,
// or the part after the scope, is name, that team is returned.
func find(home, projectDir, name string) (*source, error) {
	if name == ProjectRef {
		if src, ok := projectSource(projectDir); ok && projectDir != "" {
			return src, nil
		}
		return nil, fmt.Errorf("%w: %s: no team is assembled in this project (run cliq assemble TEAM)",
			ErrNotFound, ProjectRef)
	}
	src, err := findLibrary(home, name)
	if !errors.Is(err, ErrNotFound) || projectDir == "" {
		return src, err
	}
	if p, ok := projectSource(projectDir); ok && (p.name == name || path.Base(p.name) == name) {
		return p, nil
	}
	return nil, err
}

// findLibrary looks name up among the built-in and installed teams, in the
// order find describes.
func findLibrary(home, name string) (*source, error) {
	scope, base, err := CheckName(name)
	if err != nil {
		return nil, err
	}
	if scope != "" {
		if src, ok := lookup(home, scope, base); ok {
			return src, nil
		}
		return nil, fmt.Errorf("%w: %s is neither built in nor installed (see cliq team list)", ErrNotFound, name)
	}

	for _, s := range []string{LocalScope, BuiltinScope} {
		if src, ok := lookup(home, s, base); ok {
			return src, nil
		}
	}
	installed, err := installedSources(home)
	if err != nil {
		return nil, err
	}
	var matches []*source
	for _, src := range installed {
		if path.Base(src.name) == base {
			matches = append(matches, src)
		}
	}
	switch len(matches) {
	case 0:
		return nil, fmt.Errorf("%w: no team named %s in @%s, @%s or another installed scope (see cliq team list)",
			ErrNotFound, quote(name), LocalScope, BuiltinScope)
	case 1:
		return matches[0], nil
	}
	names := make([]string, len(matches))
	for i, m := range matches {
		names[i] = m.name
	}
	return nil, fmt.Errorf("%w: %s is installed as %s (pass the full @scope/name)",
		ErrAmbiguous, quote(name), strings.Join(names, " and "))
}

// lookup returns the built-in or installed team @scope/base, built-in
// first.
func lookup(home, scope, base string) (*source, bool) {
	if scope == BuiltinScope {
		if src, ok := builtinSource(base); ok {
			return src, true
		}
	}
	dir, err := installedDir(home, scope, base)
	if err != nil || !isTeamDir(dir) {
		return nil, false
	}
	return dirSource("@"+scope+"/"+base, scope, dir), true
}

// Resolve returns the directory of the team that ref names, for
// pipeline.LoadTeam and pipeline.Assemble. ref is one of:
//
//   - a path to a directory containing team.yml: absolute, or relative to
//     cwd. A ref containing '/' or '\', or starting with '.', is a path
//     unless it starts with '@'.
//   - "@scope/name": the built-in team for @cliq, else the installed one.
//   - a bare "name": the directory cwd/name when it contains team.yml,
//     else @local/name, else the built-in @cliq/name, else the only
//     installed team of that name in another scope.
//
// A built-in team is extracted to CLIQ_HOME/teams/.builtin/ on first use.
// The project's own team is never the result, so that assembling cannot
// copy a team onto itself. Errors wrap ErrInvalidName, ErrAmbiguous or
// ErrNotFound.
func Resolve(home, cwd, ref string) (string, error) {
	switch {
	case strings.TrimSpace(ref) == "":
		return "", fmt.Errorf(`%w: empty team reference (pass a team directory, "@scope/name" or a name)`,
			ErrInvalidName)
	case strings.Contains(ref, "://"):
		return "", fmt.Errorf("%w: %s: remote teams are not supported (download the team and run "+
			"cliq team install DIR)", ErrInvalidName, quote(ref))
	case isPathRef(ref):
		return resolvePath(cwd, ref)
	}

	if !strings.HasPrefix(ref, "@") {
		if dir := filepath.Join(cwd, ref); isTeamDir(dir) {
			return dir, nil
		}
	}
	src, err := findLibrary(home, ref)
	if err != nil {
		return "", err
	}
	if src.builtin {
		return extractBuiltin(home, src)
	}
	return src.dir, nil
}

func isPathRef(ref string) bool {
	if strings.HasPrefix(ref, "@") {
		return false
	}
	return filepath.IsAbs(ref) || strings.HasPrefix(ref, ".") || strings.ContainsAny(ref, `/\`)
}

func resolvePath(cwd, ref string) (string, error) {
	dir := ref
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(cwd, dir)
	}
	if isTeamDir(dir) {
		return dir, nil
	}
	return "", fmt.Errorf("%w: %s has no %s (pass the directory that contains %s)",
		ErrNotFound, ref, pipeline.TeamFileName, pipeline.TeamFileName)
}
