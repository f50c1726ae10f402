package server

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"cliq/integrations"
	"cliq/settings"
)

// The integrations routes are registered by registerSettingsRoutes.

// integrationScope is the part of every /integrations/ body that picks
// the settings: the global ones, or those resolved for one instance, named
// by its id or by its registered project directory.
type integrationScope struct {
	InstanceID string `json:"instance_id"`
	ProjectDir string `json:"project_dir"`
}

// integrationGetRequest is the body of /integrations/get/.
type integrationGetRequest struct {
	Name string `json:"name"`
	integrationScope
}

// integrationTestRequest is the body of /integrations/test/. Target is an
// integration name, or a type when exactly one integration has it.
type integrationTestRequest struct {
	Target string `json:"target"`
	integrationScope
}

func (s *Server) listIntegrations(w http.ResponseWriter, r *http.Request) error {
	var req integrationScope
	if err := decode(w, r, &req); err != nil {
		return err
	}
	m, instanceID, err := s.integrationSettings(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"instance_id": instanceID, "integrations": integrations.List(m),
	})
	return nil
}

func (s *Server) getIntegration(w http.ResponseWriter, r *http.Request) error {
	var req integrationGetRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Name) == "" {
		return errorf(CodeInvalidRequest, "missing name; list the integrations with /integrations/list/")
	}
	m, _, err := s.integrationSettings(r.Context(), req.integrationScope)
	if err != nil {
		return err
	}
	in, err := integrations.Get(m, req.Name)
	if err != nil {
		return integrationError(err)
	}
	writeJSON(w, http.StatusOK, in)
	return nil
}

func (s *Server) testIntegration(w http.ResponseWriter, r *http.Request) error {
	var req integrationTestRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Target) == "" {
		return errorf(CodeInvalidRequest, "missing target; give an integration name from /integrations/list/")
	}
	m, instanceID, err := s.integrationSettings(r.Context(), req.integrationScope)
	if err != nil {
		return err
	}
	res, err := integrations.Test(r.Context(), m, req.Target, s.cfg.IntegrationTimeout)
	if err != nil {
		return integrationError(err)
	}
	// res.Error is free of the integration's secrets, and the logs remove
	// any other secret shape as well.
	s.log.Debug("integration tested", "instance_id", instanceID, "integration", res.Name,
		"type", res.Type, "ok", res.OK, "status", res.Status, "duration_ms", res.DurationMS,
		"error", res.Error)
	writeJSON(w, http.StatusOK, res)
	return nil
}

// integrationSettings returns the unmasked settings that hold the
// integrations of scope, and the instance id they were resolved for ("" for
// the global settings).
func (s *Server) integrationSettings(ctx context.Context, scope integrationScope) (settings.Map, string, error) {
	instanceID, err := s.integrationInstance(ctx, scope)
	if err != nil {
		return nil, "", err
	}
	projectDir, err := s.settingsProject(ctx, instanceID)
	if err != nil {
		return nil, "", err
	}
	m, err := settings.Resolve(s.cfg.Home, projectDir)
	if err != nil {
		return nil, "", internalError("read settings failed", err)
	}
	return m, instanceID, nil
}

// integrationInstance returns the instance id that scope names, directly
// or through its project directory. When both are given they must agree.
func (s *Server) integrationInstance(ctx context.Context, scope integrationScope) (string, error) {
	if scope.ProjectDir == "" {
		return scope.InstanceID, nil
	}
	inst, err := s.projectDirInstance(ctx, scope.ProjectDir)
	if err != nil {
		return "", err
	}
	if scope.InstanceID != "" && scope.InstanceID != inst.ID {
		return "", errorf(CodeInvalidRequest, "project_dir %s belongs to instance %s, not %s; send one of the two",
			scope.ProjectDir, inst.ID, scope.InstanceID)
	}
	return inst.ID, nil
}

// integrationError maps an error of package integrations: an unknown name
// is a 404 whose message lists the configured names.
func integrationError(err error) error {
	if errors.Is(err, integrations.ErrNotFound) {
		return errorf(CodeNotFound, "%s", err.Error())
	}
	return internalError("integration failed", err)
}
