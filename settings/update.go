package settings

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Scope selects a settings view: the global file, the project file, or
// their merge.
type Scope string

// The scopes of Get and Update. Resolved is read-only.
const (
	ScopeGlobal   Scope = "global"
	ScopeProject  Scope = "project"
	ScopeResolved Scope = "resolved"
)

// ParseScope checks s. An empty s means resolved when a project is given
// and global otherwise.
func ParseScope(s string, hasProject bool) (Scope, error) {
	switch Scope(s) {
	case ScopeGlobal, ScopeProject, ScopeResolved:
		return Scope(s), nil
	case "":
		if hasProject {
			return ScopeResolved, nil
		}
		return ScopeGlobal, nil
	}
	return "", fmt.Errorf("%w: unknown scope %q: use global, project or resolved", ErrInvalid, s)
}

// Get returns the settings of scope with secrets masked. home is CLIQ_HOME;
// projectDir is the project directory, needed for the project and resolved
// scopes. It returns an error wrapping ErrInvalid for an unknown scope or a
// project scope without a project.
func Get(home, projectDir string, scope Scope) (Map, error) {
	m, err := read(home, projectDir, scope)
	if err != nil {
		return nil, err
	}
	return Mask(m), nil
}

func read(home, projectDir string, scope Scope) (Map, error) {
	switch scope {
	case ScopeGlobal:
		return ReadFile(GlobalPath(home))
	case ScopeProject:
		if projectDir == "" {
			return nil, fmt.Errorf("%w: scope project needs an instance (instance_id) or a project directory", ErrInvalid)
		}
		return ReadFile(ProjectPath(projectDir))
	case ScopeResolved:
		return Resolve(home, projectDir)
	}
	return nil, fmt.Errorf("%w: unknown scope %q: use global, project or resolved", ErrInvalid, scope)
}

// Update deep-merges patch into the file of scope (global or project; the
// resolved view cannot be written), validates the result and writes it
// atomically. It returns the new content of that file, masked. A null in
// patch deletes the key; a secret sent back in its masked form keeps the
// stored secret. Errors about the patch or the scope wrap ErrInvalid, and
// nothing is written when one is returned.
func Update(home, projectDir string, scope Scope, patch Map) (Map, error) {
	var path string
	switch scope {
	case ScopeGlobal:
		path = GlobalPath(home)
	case ScopeProject:
		if projectDir == "" {
			return nil, fmt.Errorf("%w: scope project needs an instance (instance_id) or a project directory", ErrInvalid)
		}
		path = ProjectPath(projectDir)
	case ScopeResolved:
		return nil, fmt.Errorf("%w: scope resolved is read-only: update global or project", ErrInvalid)
	default:
		return nil, fmt.Errorf("%w: unknown scope %q: use global or project", ErrInvalid, scope)
	}
	m, err := UpdateFile(path, patch)
	if err != nil {
		return nil, err
	}
	return Mask(m), nil
}

// fileLocks serializes read-merge-write cycles on one settings file within
// this process.
var fileLocks sync.Map // path -> *sync.Mutex

// UpdateFile deep-merges patch into the settings file at path, validates
// the result and writes it atomically with mode 0600, creating the
// directory when needed. It returns the unmasked result. Concurrent calls
// on the same path in one process apply one after the other.
// NOTE: two processes updating the same file at once can still lose one
// update: the last rename wins.
func UpdateFile(path string, patch Map) (Map, error) {
	mu, _ := fileLocks.LoadOrStore(path, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()

	current, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	patch, err = restoreMasked(current, patch, "")
	if err != nil {
		return nil, err
	}
	next := Merge(current, patch)
	if err := Validate(next); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create settings directory: %w", err)
	}
	if err := WriteFile(path, next); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return next, nil
}

// restoreMasked returns a copy of patch where secrets equal to the masked
// form of the current value are dropped, so the current value stays. A
// masked value that does not match the current secret is rejected.
func restoreMasked(current, patch Map, path string) (Map, error) {
	out := make(Map, len(patch))
	for k, v := range patch {
		p := join(path, k)
		if sub, ok := v.(Map); ok {
			cur, _ := current[k].(Map)
			r, err := restoreMasked(cur, sub, p)
			if err != nil {
				return nil, err
			}
			out[k] = r
			continue
		}
		s, ok := v.(string)
		if !ok || !isMasked(s) || !(IsSecretKey(k) || p == "database.url") {
			out[k] = v
			continue
		}
		if cur, ok := current[k].(string); ok && (s == MaskSecret(cur) || s == MaskURLPassword(cur)) {
			continue
		}
		return nil, &ValidationError{Path: p, Message: "is a masked value (" + MaskPrefix +
			"...): send the real secret, or leave the key out to keep the stored one"}
	}
	return out, nil
}

// SetKey sets the dotted key in the settings file at path to value. value
// is read as JSON when it parses (a number, true/false, an array, an object
// or null, which deletes the key), else as a plain string. See SetValue for
// the checks.
func SetKey(path, key, value string) error {
	var v any
	if err := json.Unmarshal([]byte(value), &v); err != nil {
		v = value
	}
	return SetValue(path, key, v)
}

// SetValue sets the dotted key in the settings file at path to v; a nil v
// deletes the key. The result is validated and written atomically; errors
// about the key or the value wrap ErrInvalid, and nothing is written then.
func SetValue(path, key string, v any) error {
	if err := checkKeyPath(key); err != nil {
		return err
	}
	_, err := UpdateFile(path, patchFor(key, v))
	return err
}

// patchFor builds the patch {"a": {"b": v}} for the key "a.b".
func patchFor(key string, v any) Map {
	parts := strings.Split(key, ".")
	patch := Map{parts[len(parts)-1]: v}
	for i := len(parts) - 2; i >= 0; i-- {
		patch = Map{parts[i]: patch}
	}
	return patch
}

func checkKeyPath(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty settings key: give a dotted key such as server.port", ErrInvalid)
	}
	for _, part := range strings.Split(key, ".") {
		if part == "" || strings.TrimSpace(part) != part {
			return fmt.Errorf("%w: settings key %q has an empty or padded segment: use a dotted key such as server.port",
				ErrInvalid, key)
		}
	}
	return nil
}
