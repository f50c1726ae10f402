// Package settings reads the global and project settings files and resolves
// them into one view: the project's settings deep-merged over the global
// ones.
package settings

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// HomeEnv names the environment variable that overrides the home directory.
const HomeEnv = "CLIQ_HOME"

// Home returns the cliq home directory: $CLIQ_HOME, or ~/.cliqrc. It creates
// the directory with mode 0700 when it does not exist.
func Home() (string, error) {
	dir := os.Getenv(HomeEnv)
	if dir == "" {
		user, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find home directory: %w (set %s)", err, HomeEnv)
		}
		dir = filepath.Join(user, ".cliqrc")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", HomeEnv, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create cliq home: %w", err)
	}
	return dir, nil
}

// Map is a settings document: JSON objects decode to nested maps.
type Map = map[string]any

// ReadFile reads a settings file. A missing file is an empty map.
func ReadFile(path string) (Map, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Map{}, nil
	}
	if err != nil {
		return nil, err
	}
	m := Map{}
	if len(strings.TrimSpace(string(data))) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: invalid JSON: %w", path, err)
	}
	return m, nil
}

// WriteFile writes m to path atomically: a temporary file in the same
// directory, then a rename.
func WriteFile(path string, m Map) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return WriteAtomic(path, append(data, '\n'), 0o600)
}

// WriteAtomic writes data to path through a temporary file and a rename, so
// that readers see either the old content or the new one, never a part.
func WriteAtomic(path string, data []byte, perm fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Merge returns base with patch deep-merged over it. Objects merge key by
// key, any other value (arrays included) replaces the old one, and a null
// value deletes the key. Neither argument is modified.
func Merge(base, patch Map) Map {
	out := make(Map, len(base))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range patch {
		if v == nil {
			delete(out, k)
			continue
		}
		pm, pok := v.(Map)
		bm, bok := out[k].(Map)
		if pok && bok {
			out[k] = Merge(bm, pm)
			continue
		}
		if pok {
			// Deleting keys below a key that does not exist changes
			// nothing; it must not create empty parent objects.
			if !onlyDeletes(pm) {
				out[k] = Merge(Map{}, pm)
			}
			continue
		}
		out[k] = v
	}
	return out
}

// onlyDeletes reports whether a non-empty patch holds nothing but nulls,
// directly or in nested objects.
func onlyDeletes(patch Map) bool {
	if len(patch) == 0 {
		return false
	}
	for _, v := range patch {
		switch v := v.(type) {
		case nil:
		case Map:
			if !onlyDeletes(v) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// GlobalPath returns the path of the global settings file in home.
func GlobalPath(home string) string { return filepath.Join(home, "settings.json") }

// ProjectPath returns the path of a project's settings file.
func ProjectPath(projectDir string) string {
	return filepath.Join(projectDir, ".cliq", "settings.json")
}

// Resolve reads the global settings from home and the project settings from
// projectDir (which may be empty) and returns their merge.
func Resolve(home, projectDir string) (Map, error) {
	global, err := ReadFile(GlobalPath(home))
	if err != nil {
		return nil, err
	}
	if projectDir == "" {
		return global, nil
	}
	project, err := ReadFile(ProjectPath(projectDir))
	if err != nil {
		return nil, err
	}
	return Merge(global, project), nil
}

// Lookup returns the value at a dotted path such as "agents.claude-code".
func Lookup(m Map, path string) (any, bool) {
	var cur any = m
	for _, key := range strings.Split(path, ".") {
		obj, ok := cur.(Map)
		if !ok {
			return nil, false
		}
		cur, ok = obj[key]
		if !ok {
			return nil, false
		}
	}
	return cur, true
}

// String returns the string at path, or def when it is missing or not a
// string.
func String(m Map, path, def string) string {
	if v, ok := Lookup(m, path); ok {
		if s, ok := v.(string); ok {
			return s
		}
	}
	return def
}

// Strings returns the array of strings at path. It returns an error naming
// the path when the value exists but is not an array of strings.
func Strings(m Map, path string) ([]string, bool, error) {
	v, ok := Lookup(m, path)
	if !ok {
		return nil, false, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, true, fmt.Errorf("setting %s: want an array of strings, got %T", path, v)
	}
	out := make([]string, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, true, fmt.Errorf("setting %s[%d]: want a string, got %T", path, i, e)
		}
		out[i] = s
	}
	return out, true, nil
}
