package teams

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"cliq/pipeline"
)

// MaxFileSize is the largest team.yml, and the largest role file, that the
// library reads: 1 MiB. A larger file is a validation error naming it.
const MaxFileSize = 1 << 20

// checkFiles reports the problems of the files of the team in dir that
// loading does not see: a team.yml or role file (roles/*.md) that is a
// symbolic link, which Install would reject, or that is larger than
// MaxFileSize. File names in the result are relative to dir.
func checkFiles(dir string) []ValidationError {
	var out []ValidationError
	if e, ok := checkFile(filepath.Join(dir, pipeline.TeamFileName), pipeline.TeamFileName, ""); !ok {
		out = append(out, e)
	}
	entries, err := os.ReadDir(filepath.Join(dir, pipeline.RolesDirName))
	if err != nil {
		return out
	}
	for _, d := range entries {
		if d.Name()[0] == '.' || filepath.Ext(d.Name()) != ".md" {
			continue
		}
		rel := pipeline.RolesDirName + "/" + d.Name()
		if e, ok := checkFile(filepath.Join(dir, filepath.FromSlash(rel)), rel, "role"); !ok {
			out = append(out, e)
		}
	}
	return out
}

// checkFile checks one file of a team: it must be a regular file, not a
// symbolic link, of at most MaxFileSize bytes. A missing file is left to
// the loader. rel names the file in the problem and field is its field.
func checkFile(path, rel, field string) (ValidationError, bool) {
	info, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ValidationError{}, true
	case err != nil:
		return ValidationError{File: rel, Field: field, Message: fmt.Sprintf("cannot read: %v", err)}, false
	case info.Mode()&fs.ModeSymlink != 0:
		return ValidationError{File: rel, Field: field, Message: rel + " is a symbolic link, which " +
			"cliq team install rejects (replace the link with the file it points to)"}, false
	case !info.Mode().IsRegular():
		return ValidationError{File: rel, Field: field,
			Message: "not a regular file (replace it with a regular file)"}, false
	}
	if problem := sizeProblem(rel, info.Size()); problem != "" {
		return ValidationError{File: rel, Field: field, Message: problem}, false
	}
	return ValidationError{}, true
}

// sizeProblem describes a file of size bytes over MaxFileSize, else "".
func sizeProblem(rel string, size int64) string {
	if size <= MaxFileSize {
		return ""
	}
	return fmt.Sprintf("%s is %d bytes, over the limit of %d bytes (1 MiB); shorten it", rel, size, MaxFileSize)
}

// hasFileProblem reports whether problems include one of file.
func hasFileProblem(problems []ValidationError, file string) bool {
	for _, p := range problems {
		if p.File == file {
			return true
		}
	}
	return false
}
