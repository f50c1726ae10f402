// Package teams manages the library of teams: the built-in teams shipped in
// the binary (scope @cliq), the teams installed under CLIQ_HOME/teams
// (@local for a user's own, any other @scope for shared ones) and the team
// assembled into a project. It lists, reads, creates, copies, deletes,
// installs and validates them, and resolves a team reference to a directory
// that pipeline.LoadTeam and pipeline.Assemble can read.
//
// Every result is a JSON-ready struct whose tags match the /teams/* API.
package teams

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"cliq/pipeline"
)

// Scopes with a fixed meaning.
const (
	// BuiltinScope is the scope of the teams shipped inside the binary. It
	// is reserved: no team can be created, copied or installed into it.
	BuiltinScope = "cliq"
	// LocalScope is the scope of a user's own teams. A bare name given to
	// Create, Copy or Delete means @local/<name>.
	LocalScope = "local"
	// ProjectScope is the Scope reported for the team assembled into a
	// project. It is not a directory under CLIQ_HOME/teams.
	ProjectScope = "project"
	// ProjectRef names the team assembled into the current project,
	// whatever its own name is.
	ProjectRef = "@project"
)

var (
	// ErrNotFound means no team has the given name or path. It is the same
	// value as pipeline.ErrTeamNotFound, so errors.Is matches either.
	ErrNotFound = pipeline.ErrTeamNotFound
	// ErrExists means a team of that name is already installed.
	ErrExists = errors.New("team already exists")
	// ErrBuiltin means the operation would change a built-in team.
	ErrBuiltin = errors.New("team is built in")
	// ErrInvalidName means a team name is malformed, would leave
	// CLIQ_HOME/teams, or uses the reserved scope @cliq.
	ErrInvalidName = errors.New("invalid team name")
	// ErrAmbiguous means a bare name matches installed teams in several
	// scopes and none of the preferred ones (@local, @cliq).
	ErrAmbiguous = errors.New("ambiguous team name")
)

// maxPartLen bounds the scope and the base name, which become directory
// names.
const maxPartLen = 64

// namePartRE matches one part of a team name: lowercase letters, digits,
// '.', '_' and '-', starting with a letter or a digit. Lowercase only, so
// that two names never map to one directory on a case-insensitive file
// system.
var namePartRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// CheckName checks that name is "@scope/name" or a bare "name" that is safe
// to use as a path below CLIQ_HOME/teams, and returns its parts. For a bare
// name scope is "". Each part is 1 to 64 lowercase letters, digits, '.',
// '_' or '-', starts with a letter or a digit and contains no "..". The
// error wraps ErrInvalidName and names the value.
func CheckName(name string) (scope, base string, err error) {
	rest, scoped := strings.CutPrefix(name, "@")
	scope, base, hasSlash := strings.Cut(rest, "/")
	if !scoped {
		scope, base = "", rest
	}
	switch {
	case name == "":
		return "", "", fmt.Errorf(`%w: empty name (pass "@scope/name" or a bare name such as my-team)`, ErrInvalidName)
	case scoped && !hasSlash, !scoped && hasSlash:
		return "", "", invalidName(name, `want "@scope/name" or a bare name without '/'`)
	case scoped && !validPart(scope):
		return "", "", invalidName(name, "invalid scope "+quote(scope)+"; "+partRule)
	case !validPart(base):
		return "", "", invalidName(name, "invalid name "+quote(base)+"; "+partRule)
	}
	return scope, base, nil
}

const partRule = "use 1 to 64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit, without '..'"

func validPart(s string) bool {
	return len(s) <= maxPartLen && namePartRE.MatchString(s) && !strings.Contains(s, "..")
}

func invalidName(name, reason string) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidName, quote(name), reason)
}

// quote quotes s for a message so that NUL bytes and other control
// characters show as escapes.
func quote(s string) string { return fmt.Sprintf("%q", s) }

// fullName checks name for writing: a bare name becomes @local/<name>, and
// the reserved scope @cliq is rejected.
func fullName(name string) (scope, base string, err error) {
	scope, base, err = CheckName(name)
	if err != nil {
		return "", "", err
	}
	if scope == "" {
		scope = LocalScope
	}
	if scope == BuiltinScope {
		return "", "", fmt.Errorf("%w: %s: the scope @%s is reserved for built-in teams (use @%s/%s or your own scope)",
			ErrInvalidName, quote(name), BuiltinScope, LocalScope, base)
	}
	return scope, base, nil
}

// teamsRoot returns CLIQ_HOME/teams.
func teamsRoot(home string) string {
	return filepath.Join(home, pipeline.TeamsDirName)
}

// installedDir returns the directory of the installed team @scope/base. It
// checks again that the result stays below CLIQ_HOME/teams, so that a name
// that CheckName let through by mistake still cannot leave it.
func installedDir(home, scope, base string) (string, error) {
	root := teamsRoot(home)
	dir := filepath.Join(root, "@"+scope, base)
	rel, err := filepath.Rel(root, dir)
	if err != nil || !filepath.IsLocal(rel) || strings.Count(filepath.ToSlash(rel), "/") != 1 {
		return "", invalidName("@"+scope+"/"+base, "resolves outside "+pipeline.TeamsDirName)
	}
	return dir, nil
}
