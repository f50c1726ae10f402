package server

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strings"

	"cliq/logging"
	"cliq/settings"
	"cliq/store"
)

// registerSettingsRoutes adds the settings and integrations endpoints.
func (s *Server) registerSettingsRoutes() {
	s.handle("POST /settings/get/", s.protected(s.getSettings))
	s.handle("POST /settings/get", s.protected(s.getSettings))
	s.handle("POST /settings/update/", s.protected(s.updateSettings))
	s.handle("POST /settings/update", s.protected(s.updateSettings))

	s.handle("POST /integrations/list/", s.protected(s.listIntegrations))
	s.handle("POST /integrations/list", s.protected(s.listIntegrations))
	s.handle("POST /integrations/get/", s.protected(s.getIntegration))
	s.handle("POST /integrations/get", s.protected(s.getIntegration))
	s.handle("POST /integrations/test/", s.protected(s.testIntegration))
	s.handle("POST /integrations/test", s.protected(s.testIntegration))
}

// restartKeys lists the global settings that the server reads at start
// only. A change to one of them takes effect at the next start.
var restartKeys = []string{"server.port", "server.host", "server.cors_origins", "database.url"}

// settingsGetRequest is the body of /settings/get/.
type settingsGetRequest struct {
	InstanceID string `json:"instance_id"`
	Scope      string `json:"scope"`
}

// settingsResponse is the response body of /settings/get/ and
// /settings/update/. Settings is the masked file (or merge) of Scope.
type settingsResponse struct {
	Scope      settings.Scope `json:"scope"`
	InstanceID string         `json:"instance_id,omitempty"`
	Settings   settings.Map   `json:"settings"`
	// RestartRequired lists the keys of an update that take effect only
	// when the server starts again.
	RestartRequired []string `json:"restart_required,omitempty"`
}

func (s *Server) getSettings(w http.ResponseWriter, r *http.Request) error {
	var req settingsGetRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	projectDir, err := s.settingsProject(r.Context(), req.InstanceID)
	if err != nil {
		return err
	}
	scope, err := settings.ParseScope(req.Scope, projectDir != "")
	if err != nil {
		return settingsError(err)
	}
	m, err := settings.Get(s.cfg.Home, projectDir, scope)
	if err != nil {
		return settingsError(err)
	}
	writeJSON(w, http.StatusOK, settingsResponse{Scope: scope, InstanceID: req.InstanceID, Settings: m})
	return nil
}

// settingsUpdateRequest is the body of /settings/update/. Patch is
// deep-merged into the file of Scope, and a null value deletes its key.
type settingsUpdateRequest struct {
	Scope      string       `json:"scope"`
	Patch      settings.Map `json:"patch"`
	InstanceID string       `json:"instance_id"`
}

func (s *Server) updateSettings(w http.ResponseWriter, r *http.Request) error {
	var req settingsUpdateRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Scope == "" {
		return errorf(CodeInvalidRequest, "missing scope; use global, or project with an instance_id")
	}
	if req.Patch == nil {
		return errorf(CodeInvalidRequest, `missing patch; send an object such as {"logging": {"server_level": "debug"}}`)
	}
	projectDir, err := s.settingsProject(r.Context(), req.InstanceID)
	if err != nil {
		return err
	}
	scope, err := settings.ParseScope(req.Scope, projectDir != "")
	if err != nil {
		return settingsError(err)
	}
	m, err := settings.Update(s.cfg.Home, projectDir, scope, req.Patch)
	if err != nil {
		return settingsError(err)
	}

	s.applySettings(scope, req.Patch)
	keys := patchKeys(req.Patch, "")
	slices.Sort(keys)
	s.log.Info("settings updated", "scope", string(scope), "instance_id", req.InstanceID,
		"keys", strings.Join(keys, ","))
	resp := settingsResponse{Scope: scope, InstanceID: req.InstanceID, Settings: m}
	if scope == settings.ScopeGlobal {
		resp.RestartRequired = changedRestartKeys(req.Patch)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// settingsProject returns the project directory of the instance, or ""
// when instanceID is empty. An unknown instance is a 404. A project
// directory that is gone or taken over by another instance is a 409,
// because writing its settings would recreate or change the wrong files.
func (s *Server) settingsProject(ctx context.Context, instanceID string) (string, error) {
	if instanceID == "" {
		return "", nil
	}
	inst, err := s.lookupInstance(ctx, "instance_id", instanceID)
	if err != nil {
		return "", err
	}
	if err := s.projectProblem(inst); err != nil {
		return "", errorf(CodeConflict, "instance %s: %v", inst.ID, err)
	}
	return inst.ProjectDir, nil
}

// projectDirInstance returns the registered instance whose project
// directory is dir. Only registered directories are accepted, so that a
// request cannot make the server read settings from an arbitrary path.
func (s *Server) projectDirInstance(ctx context.Context, dir string) (store.Instance, error) {
	list, err := s.db.Instances(ctx)
	if err != nil {
		return store.Instance{}, internalError("list instances failed", err)
	}
	clean := filepath.Clean(dir)
	for _, inst := range list {
		if filepath.Clean(inst.ProjectDir) == clean {
			return inst, nil
		}
	}
	return store.Instance{}, errorf(CodeNotFound,
		"no registered instance has the project directory %s; run cliq init there, or send instance_id", dir)
}

// applySettings passes a written change on to the parts of the running
// server that can take it: the log levels and the known secrets.
func (s *Server) applySettings(scope settings.Scope, patch settings.Map) {
	logs := s.cfg.Logs
	if logs == nil {
		return
	}
	if scope != settings.ScopeGlobal {
		// The logs read the global settings only, so a project's new
		// secrets are added one by one to keep them out of every line.
		logs.AddSecrets(unmaskedSecrets(patch)...)
		return
	}
	global, err := settings.ReadFile(settings.GlobalPath(s.cfg.Home))
	if err == nil {
		err = logs.Apply(global)
	}
	if err != nil {
		s.log.Error("apply new settings to the logs failed", "error", err)
	}
}

// unmaskedSecrets returns the secret values in m, leaving out masked
// values, which keep the stored secret.
func unmaskedSecrets(m settings.Map) []string {
	var out []string
	for _, v := range logging.Secrets(m) {
		if !strings.HasPrefix(v, settings.MaskPrefix) {
			out = append(out, v)
		}
	}
	return out
}

// patchKeys returns the dotted paths of the leaves of patch, for the log:
// the keys only, never the values.
func patchKeys(patch settings.Map, prefix string) []string {
	var keys []string
	for k, v := range patch {
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		if sub, ok := v.(settings.Map); ok && len(sub) > 0 {
			keys = append(keys, patchKeys(sub, path)...)
			continue
		}
		keys = append(keys, path)
	}
	return keys
}

// changedRestartKeys returns the keys of restartKeys that patch sets or
// deletes.
func changedRestartKeys(patch settings.Map) []string {
	var out []string
	for _, key := range restartKeys {
		if _, ok := settings.Lookup(patch, key); ok {
			out = append(out, key)
			continue
		}
		// A null parent ({"server": null}) deletes the key too.
		parent, _, _ := strings.Cut(key, ".")
		if v, ok := patch[parent]; ok && v == nil {
			out = append(out, key)
		}
	}
	return out
}

// settingsError maps an error of package settings to the API. A bad scope,
// key or value is a 400 with the settings package's message, which names
// the key and never a secret. Anything else is an I/O failure.
func settingsError(err error) error {
	if errors.Is(err, settings.ErrInvalid) {
		return errorf(CodeInvalidRequest, "%s", err.Error())
	}
	return internalError("read or write settings failed", err)
}
