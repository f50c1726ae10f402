package teams

import (
	"errors"
	"fmt"
	"path/filepath"

	"cliq/pipeline"
)

// Validate checks the team that name refers to (looked up as Get does):
// team.yml, the role file of every phase that needs one, and, for an
// installed team, that the name in team.yml matches the directory it is
// installed in. Problems of the team go into the result. The error is only
// for a name that finds no team (ErrNotFound, ErrInvalidName,
// ErrAmbiguous) or a file that cannot be read.
func Validate(home, projectDir, name string) (*ValidationResult, error) {
	src, err := find(home, projectDir, name)
	if err != nil {
		return nil, err
	}
	dir := src.dir
	if src.builtin {
		if dir, err = extractBuiltin(home, src); err != nil {
			return nil, err
		}
	}
	res, err := ValidateDir(dir)
	if err != nil {
		return nil, err
	}
	res.Name = src.name
	if src.scope != ProjectScope && res.Valid {
		if t, err := pipeline.LoadTeam(dir); err == nil && t.Name != src.name {
			res.Valid = false
			res.Errors = append(res.Errors, ValidationError{File: pipeline.TeamFileName, Field: "name",
				Message: fmt.Sprintf("team.yml names %q but the team is installed as %s (set name: %q, or "+
					"install it again with cliq team install DIR)", t.Name, src.name, src.name)})
		}
	}
	return res, nil
}

// ValidateDir checks the team in directory dir like Validate, without the
// installed-name check. It is for teams outside the library, such as a
// directory passed to cliq team validate. File names in the result are
// relative to dir.
func ValidateDir(dir string) (*ValidationResult, error) {
	res := &ValidationResult{Valid: true, Errors: []ValidationError{}}
	t, err := pipeline.LoadTeam(dir)
	var de *pipeline.DefinitionError
	switch {
	case errors.As(err, &de):
		res.Valid = false
		for _, fe := range de.Errors {
			res.Errors = append(res.Errors, ValidationError{File: relFile(dir, fe.File), Line: fe.Line,
				Phase: fe.Phase, Field: fe.Field, Message: fe.Message})
		}
	case err != nil:
		return nil, err
	default:
		res.Name = t.Name
	}
	return res, nil
}

// relFile returns file relative to dir when it is inside dir, else file.
func relFile(dir, file string) string {
	if file == "" {
		return ""
	}
	rel, err := filepath.Rel(dir, file)
	if err != nil || !filepath.IsLocal(rel) {
		return file
	}
	return filepath.ToSlash(rel)
}

// relabel rewrites the file names of a *pipeline.DefinitionError found in
// the staging directory stage so that they start with the team name
// instead of the temporary path. Other errors are returned unchanged.
func relabel(err error, stage, name string) error {
	var de *pipeline.DefinitionError
	if !errors.As(err, &de) {
		return err
	}
	out := &pipeline.DefinitionError{File: name + "/" + relFile(stage, de.File)}
	for _, fe := range de.Errors {
		fe.File = name + "/" + relFile(stage, fe.File)
		out.Errors = append(out.Errors, fe)
	}
	return out
}
