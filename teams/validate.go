package teams

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"cliq/pipeline"
	"cliq/settings"
)

// Validate checks the team that name refers to (looked up as Get does):
// team.yml, the role file of every phase that needs one, and the sub-team
// of every team phase. A sub-team must be found, must load, and must not
// include the team again, directly or through others. For an installed
// team, the name in team.yml must match the directory it is installed in.
// Problems of the team go into the result. The error is only for a name that finds no
// team (ErrNotFound, ErrInvalidName, ErrAmbiguous) or a file that cannot
// be read.
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
	res, t, err := validateDir(home, dir, libraryResolver(home))
	if err != nil {
		return nil, err
	}
	res.Name = src.name
	if t != nil && src.scope != ProjectScope && t.Name != src.name {
		res.Valid = false
		res.Errors = append(res.Errors, ValidationError{File: pipeline.TeamFileName, Field: "name",
			Message: fmt.Sprintf("team.yml names %q but the team is installed as %s (set name: %q, or "+
				"install it again with cliq team install DIR)", t.Name, src.name, src.name)})
	}
	return res, nil
}

// ValidateDir checks the team in directory dir like Validate, without the
// installed-name check. It is for teams outside the library, such as a
// directory passed to cliq team validate. Sub-teams named @scope/name are
// looked up in the library of settings.Home. File names in the result are
// relative to dir.
func ValidateDir(dir string) (*ValidationResult, error) {
	home, err := settings.Home()
	if err != nil {
		return nil, err
	}
	res, _, err := validateDir(home, dir, libraryResolver(home))
	return res, err
}

// libraryResolver resolves sub-team references with Resolve, as a run
// started by the CLI resolves them.
func libraryResolver(home string) pipeline.TeamResolver {
	return func(base, ref string) (string, error) { return Resolve(home, base, ref) }
}

// validateDir checks the files of the team in dir (see checkFiles) and,
// when team.yml and the role files are valid, its sub-teams, resolved with
// resolve. It returns the loaded team when team.yml and the role files are
// valid, else nil.
func validateDir(home, dir string, resolve pipeline.TeamResolver) (*ValidationResult, *pipeline.Team, error) {
	res := &ValidationResult{Valid: true, Errors: []ValidationError{}}
	if problems := checkFiles(dir); len(problems) > 0 {
		res.Valid = false
		res.Errors = append(res.Errors, problems...)
		if hasFileProblem(problems, pipeline.TeamFileName) {
			return res, nil, nil
		}
	}
	t, err := pipeline.LoadTeam(dir)
	var de *pipeline.DefinitionError
	switch {
	case errors.As(err, &de):
		res.Valid = false
		for _, fe := range de.Errors {
			res.Errors = append(res.Errors, ValidationError{File: relFile(dir, fe.File), Line: fe.Line,
				Phase: fe.Phase, Field: fe.Field, Message: fe.Message})
		}
		return res, nil, nil
	case err != nil:
		return nil, nil, err
	}
	res.Name = t.Name
	if problems := checkSubTeams(home, t, resolve); len(problems) > 0 {
		res.Valid = false
		res.Errors = append(res.Errors, problems...)
	}
	return res, t, nil
}

// checkSubTeams runs pipeline.CheckSubTeams for each team phase of t on
// its own, so that each problem names the phase of t that leads to it.
// The problems are a sub-team that is not found or does not load, and a
// chain of teams that includes itself (pipeline.ErrTeamCycle). Sub-teams
// are resolved with resolve. Messages show paths relative to the team
// directory or to CLIQ_HOME.
func checkSubTeams(home string, t *pipeline.Team, resolve pipeline.TeamResolver) []ValidationError {
	var out []ValidationError
	for _, ph := range t.Workflow.Phases {
		if ph.Type != pipeline.TypeTeam {
			continue
		}
		single := *t
		single.Workflow.Phases = []pipeline.Phase{ph}
		if err := pipeline.CheckSubTeams(&single, resolve); err != nil {
			out = append(out, ValidationError{File: pipeline.TeamFileName, Phase: ph.Name, Field: "team",
				Message: hidePaths(err.Error(), home, t.Dir)})
		}
	}
	return out
}

// hidePaths removes the team directory dir from msg and writes CLIQ_HOME
// in place of home, so that results do not show where files are on the
// server.
func hidePaths(msg, home, dir string) string {
	if dir != "" {
		msg = strings.ReplaceAll(msg, dir+string(filepath.Separator), "")
	}
	if home != "" {
		msg = strings.ReplaceAll(msg, home, "$CLIQ_HOME")
	}
	return msg
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
