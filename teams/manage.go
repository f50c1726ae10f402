package teams

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"cliq/pipeline"
)

// skeleton is the team.yml that Create writes: one exec phase that passes,
// so the new team validates and runs before it is edited.
const skeleton = `# Created by cliq team new. Add phases under workflow.phases; every phase
# whose agent is not exec needs a role file roles/<phase>.md.
name: %q
description: "A new team: describe what it does"
version: "0.1.0"
workflow:
  phases:
    - name: hello
      agent: exec
      commands:
        - name: greet
          run: echo "hello from %s"
`

// Create writes a new team named name to CLIQ_HOME/teams: a team.yml with
// one exec phase and an empty roles directory. A bare name means
// @local/<name>. It returns ErrInvalidName for a malformed name or the
// reserved scope @cliq, and ErrExists when the team is already installed.
func Create(home, name string) (*Summary, error) {
	scope, base, err := fullName(name)
	if err != nil {
		return nil, err
	}
	full := "@" + scope + "/" + base
	return writeTeam(home, scope, base, false, func(stage string) error {
		if err := os.Mkdir(filepath.Join(stage, pipeline.RolesDirName), 0o755); err != nil {
			return err
		}
		data := fmt.Appendf(nil, skeleton, full, full)
		return os.WriteFile(filepath.Join(stage, pipeline.TeamFileName), data, 0o644)
	})
}

// Copy copies the team that source names (looked up as Get does) to a new
// team name in CLIQ_HOME/teams and sets the name in its team.yml. A bare
// name means @local/<name>. Errors wrap ErrNotFound or ErrAmbiguous for
// source, ErrInvalidName or ErrExists for name, and pipeline.ErrInvalidTeam
// when the source does not validate (an invalid team is not copied).
func Copy(home, projectDir, source, name string) (*Summary, error) {
	src, err := find(home, projectDir, source)
	if err != nil {
		return nil, err
	}
	scope, base, err := fullName(name)
	if err != nil {
		return nil, err
	}
	full := "@" + scope + "/" + base
	return writeTeam(home, scope, base, false, func(stage string) error {
		if err := copyFS(src.fsys, stage); err != nil {
			return fmt.Errorf("copy %s: %w", src.name, err)
		}
		return renameTeamFile(filepath.Join(stage, pipeline.TeamFileName), full)
	})
}

// renameTeamFile sets the top-level name of the team.yml at path. It edits
// the YAML tree, so comments and the other fields stay.
func renameTeamFile(path, name string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: invalid YAML: %w", pipeline.TeamFileName, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return fmt.Errorf("%s: expected a mapping at the top level", pipeline.TeamFileName)
	}
	root := doc.Content[0]
	value := &yaml.Node{Kind: yaml.ScalarNode, Value: name, Style: yaml.DoubleQuotedStyle}
	found := false
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "name" {
			root.Content[i+1] = value
			found = true
		}
	}
	if !found {
		key := &yaml.Node{Kind: yaml.ScalarNode, Value: "name"}
		root.Content = append([]*yaml.Node{key, value}, root.Content...)
	}

	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("write %s: %w", pipeline.TeamFileName, err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("write %s: %w", pipeline.TeamFileName, err)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// Delete removes the installed team name from CLIQ_HOME/teams. A bare name
// means @local/<name>. It returns ErrBuiltin for a built-in team,
// ErrInvalidName for a malformed name and ErrNotFound when the team is not
// installed. The project's assembled copy of a team is never touched.
func Delete(home, name string) error {
	scope, base, err := CheckName(name)
	if err != nil {
		return err
	}
	if scope == "" {
		scope = LocalScope
	}
	if _, ok := builtinSource(base); ok && scope == BuiltinScope {
		return fmt.Errorf("%w: @%s/%s ships with cliq and cannot be deleted (copy it to change it: "+
			"cliq team copy @%s/%s my-%s)", ErrBuiltin, scope, base, scope, base, base)
	}
	dir, err := installedDir(home, scope, base)
	if err != nil {
		return err
	}
	if !isTeamDir(dir) {
		return fmt.Errorf("%w: @%s/%s is not installed (see cliq team list)", ErrNotFound, scope, base)
	}

	// Move the team out of the way first, so that no reader sees a team
	// directory that is half deleted.
	trash, err := os.MkdirTemp(teamsRoot(home), ".delete-")
	if err != nil {
		return fmt.Errorf("delete @%s/%s: %w", scope, base, err)
	}
	defer os.RemoveAll(trash)
	if err := os.Rename(dir, filepath.Join(trash, base)); err != nil {
		return fmt.Errorf("delete @%s/%s: %w", scope, base, err)
	}
	// Remove the scope directory when it is now empty; a non-empty one
	// stays, which makes the error irrelevant.
	_ = os.Remove(filepath.Dir(dir))
	return nil
}

// Install copies the team directory dir into CLIQ_HOME/teams/@scope/name,
// where @scope/name is the name in its team.yml. The team must validate
// first, role files included; its errors come back as a
// *pipeline.DefinitionError. An installed team of another version is
// replaced. One of the same version is replaced only when force is set,
// else the error wraps ErrExists. A team named in the reserved scope @cliq
// wraps ErrInvalidName. Hidden files are not copied and symbolic links are
// rejected.
func Install(home, dir string, force bool) (*InstallResult, error) {
	if !isTeamDir(dir) {
		return nil, fmt.Errorf("%w: %s has no %s (pass the directory that contains %s)",
			ErrNotFound, dir, pipeline.TeamFileName, pipeline.TeamFileName)
	}
	t, err := pipeline.LoadTeam(dir)
	if err != nil {
		return nil, err
	}
	scope, base, err := fullName(t.Name)
	if err != nil {
		return nil, fmt.Errorf("%w (change name in %s)", err, pipeline.TeamFileName)
	}

	res := &InstallResult{}
	if src, ok := lookup(home, scope, base); ok && !src.builtin {
		prev := summarize(src)
		if prev.Version == t.Version && !force {
			return nil, fmt.Errorf("%w: %s %s is already installed (raise version in %s, or pass --force "+
				"to replace it)", ErrExists, t.Name, versionText(t.Version), pipeline.TeamFileName)
		}
		res.Replaced, res.PreviousVersion = true, prev.Version
	}
	s, err := writeTeam(home, scope, base, true, func(stage string) error {
		return copyFS(os.DirFS(dir), stage)
	})
	if err != nil {
		return nil, err
	}
	res.Summary = *s
	return res, nil
}

func versionText(v string) string {
	if v == "" {
		return "(no version)"
	}
	return "version " + v
}

// writeTeam builds a team in a staging directory under CLIQ_HOME/teams with
// fill, checks that it loads and validates, and renames it to
// @scope/base. Without replace an existing team is ErrExists. With it, the
// old team is moved aside and removed once the new one is in place. A
// failure at any step leaves the library as it was.
func writeTeam(home, scope, base string, replace bool, fill func(stage string) error) (*Summary, error) {
	full := "@" + scope + "/" + base
	dir, err := installedDir(home, scope, base)
	if err != nil {
		return nil, err
	}
	if !replace && exists(dir) {
		return nil, errExists(full)
	}

	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("write team %s: %w", full, err)
	}
	// Remove the scope directory again if this call created it and fails;
	// os.Remove leaves a directory that holds other teams.
	defer func() { _ = os.Remove(filepath.Dir(dir)) }()

	stage, err := stageTeam(home, full, fill)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(stage)

	if replace {
		err = swapIn(teamsRoot(home), stage, dir)
	} else if err = os.Rename(stage, dir); err != nil && exists(dir) {
		return nil, errExists(full)
	}
	if err != nil {
		return nil, fmt.Errorf("write team %s: %w", full, err)
	}
	s := summarize(dirSource(full, scope, dir))
	return &s, nil
}

func errExists(full string) error {
	return fmt.Errorf("%w: %s is already installed (pick another name, or delete it first)", ErrExists, full)
}

// stageTeam creates a hidden staging directory under CLIQ_HOME/teams, fills
// it, and checks that the result validates as Validate checks a team,
// sub-teams included (see checkStaged). Validation errors
// name the team full instead of the staging path. The caller removes the
// directory, except on error, when it is already removed.
func stageTeam(home, full string, fill func(stage string) error) (string, error) {
	stage, err := os.MkdirTemp(teamsRoot(home), ".stage-")
	if err != nil {
		return "", fmt.Errorf("write team %s: %w", full, err)
	}
	if err := fill(stage); err != nil {
		os.RemoveAll(stage)
		return "", fmt.Errorf("write team %s: %w", full, err)
	}
	if err := checkStaged(home, stage, full); err != nil {
		os.RemoveAll(stage)
		return "", err
	}
	return stage, nil
}

// checkStaged runs the checks of Validate on the team staged in stage that
// is to become full: file sizes and sub-teams. References to full resolve
// to stage, so a new version that closes a cycle of installed teams is
// rejected. Problems come back as a *pipeline.DefinitionError whose file
// names start with full.
func checkStaged(home, stage, full string) error {
	res, _, err := validateDir(home, stage, stagedResolver(home, stage, full))
	if err != nil {
		return fmt.Errorf("write team %s: %w", full, err)
	}
	if res.Valid {
		return nil
	}
	hidden := "$CLIQ_HOME" + string(filepath.Separator) + filepath.Join(filepath.Base(teamsRoot(home)),
		filepath.Base(stage))
	de := &pipeline.DefinitionError{File: full + "/" + pipeline.TeamFileName}
	for _, e := range res.Errors {
		de.Errors = append(de.Errors, pipeline.FieldError{File: full + "/" + e.File, Line: e.Line,
			Phase: e.Phase, Field: e.Field, Message: strings.ReplaceAll(e.Message, hidden, full)})
	}
	return de
}

// stagedResolver resolves like Resolve, except that a reference to the
// team full, installed or not yet, is the staged directory stage.
func stagedResolver(home, stage, full string) pipeline.TeamResolver {
	scope, base, _ := CheckName(full)
	final, _ := installedDir(home, scope, base)
	return func(dir, ref string) (string, error) {
		got, err := Resolve(home, dir, ref)
		if err == nil && got == final {
			return stage, nil
		}
		if errors.Is(err, ErrNotFound) && namesTeam(ref, scope, base) {
			return stage, nil
		}
		return got, err
	}
}

// namesTeam reports whether the library name ref, full or bare, names the
// team @scope/base.
func namesTeam(ref, scope, base string) bool {
	s, b, err := CheckName(ref)
	return err == nil && b == base && (s == scope || s == "")
}

// swapIn replaces the team directory dir, if any, with stage. The old
// directory is moved into a temporary directory and removed once the new
// one is in place. When that second rename fails, the old one is moved
// back.
func swapIn(root, stage, dir string) error {
	trash, err := os.MkdirTemp(root, ".replace-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(trash)
	old := filepath.Join(trash, "old")
	hadOld := true
	if err := os.Rename(dir, old); errors.Is(err, fs.ErrNotExist) {
		hadOld = false
	} else if err != nil {
		return err
	}
	if err := os.Rename(stage, dir); err != nil {
		if hadOld {
			_ = os.Rename(old, dir)
		}
		return err
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
