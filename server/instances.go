package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"cliq/pipeline"
	"cliq/store"
)

// instanceRequest is the body of /instances/get/ and /instances/remove/.
type instanceRequest struct {
	ID string `json:"id"`
}

// instanceSummary is one entry of /instances/list/.
type instanceSummary struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	ProjectDir string    `json:"project_dir"`
	Team       string    `json:"team"`
	Valid      bool      `json:"valid"`
	Reason     string    `json:"reason,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

// instanceDetail is the body of /instances/get/: the summary plus the
// instance's last run.
type instanceDetail struct {
	instanceSummary
	LastRun *jobResponse `json:"last_run"`
}

func (s *Server) listInstances(w http.ResponseWriter, r *http.Request) error {
	var req struct{}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if body, ok := s.instances.list(); ok {
		writeJSONBytes(w, http.StatusOK, body)
		return nil
	}
	list, err := s.db.Instances(r.Context())
	if err != nil {
		return internalError("list instances failed", err)
	}
	out := make([]instanceSummary, len(list))
	for i, inst := range list {
		out[i] = summarizeInstance(inst)
	}
	body, err := json.Marshal(map[string]any{"instances": out})
	if err != nil {
		return internalError("encode instance list failed", err)
	}
	body = append(body, '\n')
	s.instances.putList(body)
	writeJSONBytes(w, http.StatusOK, body)
	return nil
}

func (s *Server) getInstance(w http.ResponseWriter, r *http.Request) error {
	var req instanceRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	inst, err := s.lookupInstance(r.Context(), "id", req.ID)
	if err != nil {
		return err
	}
	detail := instanceDetail{instanceSummary: summarizeInstance(inst)}
	if detail.Valid {
		job, err := s.jobState(inst)
		if err != nil {
			return err
		}
		if job.Status != pipeline.StatusIdle {
			detail.LastRun = &job
		}
	}
	writeJSON(w, http.StatusOK, detail)
	return nil
}

func (s *Server) removeInstance(w http.ResponseWriter, r *http.Request) error {
	var req instanceRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	inst, err := s.lookupInstance(r.Context(), "id", req.ID)
	if err != nil {
		return err
	}
	// Without its registry entry a run could no longer be cancelled or
	// watched through the API.
	if run, ok := s.activeRun(inst); ok {
		return errorf(CodeConflict, "instance %s has an active run %s; cancel it with /jobs/cancel/ first", inst.ID, run.runID)
	}
	if err := s.db.RemoveInstance(r.Context(), inst.ID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errorf(CodeNotFound, "instance %s not found", inst.ID)
		}
		return internalError("remove instance failed", err)
	}
	s.monitor.unwatch(inst.ID)
	s.instances.forget(inst.ID)
	s.log.Info("instance removed", "instance_id", inst.ID)
	writeJSON(w, http.StatusOK, map[string]any{"id": inst.ID, "removed": true})
	return nil
}

// lookupInstance returns the registered instance with the given id. field
// names the request field in the error for an empty id.
func (s *Server) lookupInstance(ctx context.Context, field, id string) (store.Instance, error) {
	if strings.TrimSpace(id) == "" {
		return store.Instance{}, errorf(CodeInvalidRequest, "missing %s; list the instances with /instances/list/", field)
	}
	if e, ok := s.instances.get(id); ok {
		return e.inst, nil
	}
	inst, err := s.db.Instance(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Instance{}, errorf(CodeNotFound, "instance %s not found", id)
	}
	if err != nil {
		return store.Instance{}, internalError("look up instance failed", err)
	}
	s.instances.put(inst)
	return inst, nil
}

// projectProblem returns why the instance's project cannot be used, or
// nil, from a check at most cacheTTL old.
func (s *Server) projectProblem(inst store.Instance) error {
	e, ok := s.instances.get(inst.ID)
	if !ok || e.inst.ProjectDir != inst.ProjectDir {
		e = s.instances.put(inst)
	}
	return e.problem
}

// summarizeInstance checks the instance's project directory: it must exist
// and its .cliq/cliq.id must hold the registered id.
func summarizeInstance(inst store.Instance) instanceSummary {
	sum := instanceSummary{ID: inst.ID, Name: inst.Name, ProjectDir: inst.ProjectDir, CreatedAt: inst.CreatedAt}
	if err := checkProjectDir(inst); err != nil {
		sum.Reason = err.Error()
		return sum
	}
	sum.Valid = true
	sum.Team = assembledTeamName(inst.ProjectDir)
	return sum
}

// checkProjectDir returns why the instance's project cannot be used, or nil.
func checkProjectDir(inst store.Instance) error {
	info, err := os.Stat(inst.ProjectDir)
	if err != nil {
		return fmt.Errorf("project directory %s no longer exists", inst.ProjectDir)
	}
	if !info.IsDir() {
		return fmt.Errorf("project directory %s is not a directory", inst.ProjectDir)
	}
	data, err := os.ReadFile(filepath.Join(inst.ProjectDir, ".cliq", "cliq.id"))
	if err != nil {
		return fmt.Errorf("%s has no .cliq/cliq.id; run cliq init there", inst.ProjectDir)
	}
	if id := strings.TrimSpace(string(data)); id != inst.ID {
		return fmt.Errorf("%s now belongs to instance %s", inst.ProjectDir, id)
	}
	return nil
}

// assembledTeamName returns the name of the team assembled in the project,
// or "" when there is none or it does not load.
func assembledTeamName(projectDir string) string {
	team, err := pipeline.LoadProjectTeam(projectDir)
	if err != nil {
		return ""
	}
	return team.Name
}
