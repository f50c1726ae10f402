package teams

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"sync"

	"cliq/pipeline"
)

// builtinFS holds the built-in teams as builtin/@cliq/<name>/team.yml and
// builtin/@cliq/<name>/roles/<role>.md.
//
//go:embed builtin
var builtinFS embed.FS

// builtinDir is the directory of the built-in teams inside builtinFS.
const builtinDir = "builtin/@" + BuiltinScope

// extractDirName is the directory under CLIQ_HOME/teams that built-in teams
// are extracted to. Its leading dot keeps it out of listings and out of the
// name space of scopes, which start with '@'.
const extractDirName = ".builtin"

// BuiltinNames returns the full names of the built-in teams, sorted.
func BuiltinNames() []string {
	entries, err := fs.ReadDir(builtinFS, builtinDir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, "@"+BuiltinScope+"/"+e.Name())
		}
	}
	sort.Strings(names)
	return names
}

// builtinSource returns the built-in team base, if there is one.
func builtinSource(base string) (*source, bool) {
	dir := path.Join(builtinDir, base)
	if _, err := fs.Stat(builtinFS, path.Join(dir, pipeline.TeamFileName)); err != nil {
		return nil, false
	}
	sub, err := fs.Sub(builtinFS, dir)
	if err != nil {
		return nil, false
	}
	return &source{name: "@" + BuiltinScope + "/" + base, scope: BuiltinScope, builtin: true, fsys: sub}, true
}

// builtinHash is a digest of every embedded file, so that a new binary with
// changed built-in teams extracts them to a new directory instead of
// reusing the files of an older binary.
var builtinHash = sync.OnceValue(func() string {
	h := sha256.New()
	_ = fs.WalkDir(builtinFS, "builtin", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := builtinFS.ReadFile(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(data))
		h.Write(data)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:16]
})

// extractBuiltin writes the built-in team base to
// CLIQ_HOME/teams/.builtin/<digest>/@cliq/<base> unless it is there
// already, and returns that directory. The files are written to a
// temporary directory first and renamed into place, so that concurrent
// callers never see a partial team.
//
// NOTE: directories of older digests are left behind; they are small and
// a process of an older binary may still be reading them.
func extractBuiltin(home string, src *source) (string, error) {
	base := path.Base(src.name)
	parent := filepath.Join(teamsRoot(home), extractDirName, builtinHash(), "@"+BuiltinScope)
	dir := filepath.Join(parent, base)
	if isTeamDir(dir) {
		return dir, nil
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("extract built-in team %s: %w", src.name, err)
	}
	stage, err := os.MkdirTemp(parent, "."+base+"-")
	if err != nil {
		return "", fmt.Errorf("extract built-in team %s: %w", src.name, err)
	}
	defer os.RemoveAll(stage)
	if err := copyFS(src.fsys, stage); err != nil {
		return "", fmt.Errorf("extract built-in team %s: %w", src.name, err)
	}
	if err := os.Rename(stage, dir); err != nil && !isTeamDir(dir) {
		return "", fmt.Errorf("extract built-in team %s: %w", src.name, err)
	}
	return dir, nil
}

// errSymlink is returned by copyFS for a symbolic link, which could point
// outside the team directory.
var errSymlink = errors.New("symbolic links are not copied")

// copyFS copies the directories and regular files of fsys into the
// existing directory dst. Hidden entries (names starting with '.') are
// skipped; a symbolic link or another special file is an error naming it.
// Executable files stay executable.
func copyFS(fsys fs.FS, dst string) error {
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		if d.Name()[0] == '.' {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, filepath.FromSlash(p))
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s: %w (replace the link with the file it points to)", p, errSymlink)
		case d.IsDir():
			return os.Mkdir(target, 0o755)
		case !d.Type().IsRegular():
			return fmt.Errorf("%s: not a regular file (remove it from the team directory)", p)
		}
		return copyFile(fsys, p, target)
	})
}

// copyFile copies the file p of fsys to target, keeping the executable bit.
func copyFile(fsys fs.FS, p, target string) error {
	in, err := fsys.Open(p)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	perm := fs.FileMode(0o644)
	if info.Mode()&0o111 != 0 {
		perm = 0o755
	}
	out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// isTeamDir reports whether dir contains a regular team.yml.
func isTeamDir(dir string) bool {
	info, err := os.Stat(filepath.Join(dir, pipeline.TeamFileName))
	return err == nil && info.Mode().IsRegular()
}
