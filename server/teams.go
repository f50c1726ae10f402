package server

import (
	"errors"
	"net/http"
	"strings"

	"cliq/pipeline"
	"cliq/settings"
	"cliq/teams"
)

// registerTeamRoutes adds the /teams/* endpoints, thin wrappers over
// package teams so that they return what cliq team returns.
func (s *Server) registerTeamRoutes() {
	s.handle("POST /teams/list/", s.protected(s.listTeams))
	s.handle("POST /teams/list", s.protected(s.listTeams))
	s.handle("POST /teams/get/", s.protected(s.getTeam))
	s.handle("POST /teams/get", s.protected(s.getTeam))
	s.handle("POST /teams/create/", s.protected(s.createTeam))
	s.handle("POST /teams/create", s.protected(s.createTeam))
	s.handle("POST /teams/copy/", s.protected(s.copyTeam))
	s.handle("POST /teams/copy", s.protected(s.copyTeam))
	s.handle("POST /teams/delete/", s.protected(s.deleteTeam))
	s.handle("POST /teams/delete", s.protected(s.deleteTeam))
	s.handle("POST /teams/validate/", s.protected(s.validateTeam))
	s.handle("POST /teams/validate", s.protected(s.validateTeam))
}

// teamListRequest is the body of /teams/list/. With InstanceID, the team
// assembled into that instance's project is listed too.
type teamListRequest struct {
	InstanceID string `json:"instance_id"`
}

func (s *Server) listTeams(w http.ResponseWriter, r *http.Request) error {
	var req teamListRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	home, project, err := s.teamContext(r, req.InstanceID)
	if err != nil {
		return err
	}
	list, err := teams.List(home, project)
	if err != nil {
		return teamError(home, err)
	}
	if list == nil {
		list = []teams.Summary{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"teams": list})
	return nil
}

// teamRequest is the body of /teams/get/ and /teams/validate/. Name is
// looked up as cliq team info looks it up; "@project" and the project's
// team need InstanceID.
type teamRequest struct {
	Name       string `json:"name"`
	InstanceID string `json:"instance_id"`
}

func (s *Server) getTeam(w http.ResponseWriter, r *http.Request) error {
	var req teamRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	home, project, err := s.teamLookup(r, "name", req.Name, req.InstanceID)
	if err != nil {
		return err
	}
	detail, err := teams.Get(home, project, req.Name)
	if err != nil {
		return teamError(home, err)
	}
	writeJSON(w, http.StatusOK, detail)
	return nil
}

// validateTeam returns 200 for a team that has problems too, because the
// problems are the result. Only a name that finds no team is an error.
// Directories are not accepted, so that a client cannot make the server
// read a path of its choosing.
func (s *Server) validateTeam(w http.ResponseWriter, r *http.Request) error {
	var req teamRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	home, project, err := s.teamLookup(r, "name", req.Name, req.InstanceID)
	if err != nil {
		return err
	}
	res, err := teams.Validate(home, project, req.Name)
	if err != nil {
		return teamError(home, err)
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// teamNameRequest is the body of /teams/create/ and /teams/delete/. A bare
// name means @local/<name>.
type teamNameRequest struct {
	Name string `json:"name"`
}

func (s *Server) createTeam(w http.ResponseWriter, r *http.Request) error {
	var req teamNameRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := requireTeamName("name", req.Name); err != nil {
		return err
	}
	home, err := s.teamsHome()
	if err != nil {
		return err
	}
	sum, err := teams.Create(home, req.Name)
	if err != nil {
		return teamError(home, err)
	}
	s.log.Info("team created", "team", sum.Name)
	writeJSON(w, http.StatusCreated, sum)
	return nil
}

// teamCopyRequest is the body of /teams/copy/. Source is looked up as in
// /teams/get/; Name is where the copy goes, a bare name meaning
// @local/<name>.
type teamCopyRequest struct {
	Source     string `json:"source"`
	Name       string `json:"name"`
	InstanceID string `json:"instance_id"`
}

func (s *Server) copyTeam(w http.ResponseWriter, r *http.Request) error {
	var req teamCopyRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := requireTeamName("name", req.Name); err != nil {
		return err
	}
	home, project, err := s.teamLookup(r, "source", req.Source, req.InstanceID)
	if err != nil {
		return err
	}
	sum, err := teams.Copy(home, project, req.Source, req.Name)
	if err != nil {
		return teamError(home, err)
	}
	s.log.Info("team copied", "source", req.Source, "team", sum.Name)
	writeJSON(w, http.StatusCreated, sum)
	return nil
}

func (s *Server) deleteTeam(w http.ResponseWriter, r *http.Request) error {
	var req teamNameRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := requireTeamName("name", req.Name); err != nil {
		return err
	}
	home, err := s.teamsHome()
	if err != nil {
		return err
	}
	if err := teams.Delete(home, req.Name); err != nil {
		return teamError(home, err)
	}
	name := req.Name
	if !strings.HasPrefix(name, "@") {
		name = "@" + teams.LocalScope + "/" + name
	}
	s.log.Info("team deleted", "team", name)
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "deleted": true})
	return nil
}

// requireTeamName rejects a blank team name in the request field field.
// Package teams checks the rest of the name.
func requireTeamName(field, name string) error {
	if strings.TrimSpace(name) == "" {
		return errorf(CodeInvalidRequest,
			"missing %s; pass a team name such as \"@local/my-team\" (see /teams/list/)", field)
	}
	return nil
}

// teamLookup checks the team name in the request field field and returns
// CLIQ_HOME and the project directory of instanceID, as teamContext does.
// "@project" without an instance id is rejected, because the server has
// no current project of its own.
func (s *Server) teamLookup(r *http.Request, field, name, instanceID string) (home, project string, err error) {
	if err := requireTeamName(field, name); err != nil {
		return "", "", err
	}
	if name == teams.ProjectRef && instanceID == "" {
		return "", "", errorf(CodeInvalidRequest,
			"%s %s names the team assembled into a project; pass instance_id too", field, teams.ProjectRef)
	}
	return s.teamContext(r, instanceID)
}

// teamContext returns CLIQ_HOME and, when instanceID is set, the project
// directory of that registered instance, so that its assembled team is
// visible as "@project". An unknown instance is a 404 and an instance
// whose project is unusable a 409, as for /jobs/*.
func (s *Server) teamContext(r *http.Request, instanceID string) (home, project string, err error) {
	home, err = s.teamsHome()
	if err != nil {
		return "", "", err
	}
	if instanceID == "" {
		return home, "", nil
	}
	inst, err := s.lookupInstance(r.Context(), "instance_id", instanceID)
	if err != nil {
		return "", "", err
	}
	if err := checkProjectDir(inst); err != nil {
		return "", "", errorf(CodeConflict, "instance %s: %v", inst.ID, err)
	}
	return home, inst.ProjectDir, nil
}

// teamsHome returns Config.Home, or settings.Home when the server was
// configured without one.
func (s *Server) teamsHome() (string, error) {
	if s.cfg.Home != "" {
		return s.cfg.Home, nil
	}
	home, err := settings.Home()
	if err != nil {
		return "", internalError("find cliq home failed", err)
	}
	return home, nil
}

// teamError maps an error of package teams to an API error. The message
// is the library's, which names the team and the fix, with CLIQ_HOME
// written in place of its directory.
func teamError(home string, err error) error {
	msg := err.Error()
	if home != "" {
		msg = strings.ReplaceAll(msg, home, "$CLIQ_HOME")
	}
	switch {
	case errors.Is(err, teams.ErrNotFound):
		return &Error{Code: CodeNotFound, Message: msg, Err: err}
	case errors.Is(err, teams.ErrExists), errors.Is(err, teams.ErrBuiltin):
		return &Error{Code: CodeConflict, Message: msg, Err: err}
	case errors.Is(err, teams.ErrInvalidName), errors.Is(err, teams.ErrAmbiguous),
		errors.Is(err, pipeline.ErrInvalidTeam):
		return &Error{Code: CodeInvalidRequest, Message: msg, Err: err}
	}
	return internalError("team operation failed", err)
}
