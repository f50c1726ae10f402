package server

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"cliq/pipeline"
	"cliq/settings"
	"cliq/store"
)

// Limits of /jobs/log/.
const (
	// maxLogBytes is how much of the end of orchestrator.log a response
	// reads at most.
	maxLogBytes = 4 << 20
	// maxReqFileBytes bounds a req_file.
	maxReqFileBytes = 1 << 20
)

// jobRequest is the body of the endpoints that only name an instance.
type jobRequest struct {
	InstanceID string `json:"instance_id"`
}

// createJobRequest is the body of /jobs/create/.
type createJobRequest struct {
	InstanceID string       `json:"instance_id"`
	ReqFile    string       `json:"req_file"`
	Settings   settings.Map `json:"settings"`
	Force      bool         `json:"force"`
}

// logRequest is the body of /jobs/log/.
type logRequest struct {
	InstanceID string `json:"instance_id"`
	Tail       int    `json:"tail"`
}

// jobResponse is a run as /jobs/get/ and /jobs/list/ report it.
type jobResponse struct {
	InstanceID   string     `json:"instance_id"`
	RunID        string     `json:"run_id"`
	Status       string     `json:"status"`
	Team         string     `json:"team"`
	StartedAt    *time.Time `json:"started_at"`
	FinishedAt   *time.Time `json:"finished_at"`
	Reason       string     `json:"reason,omitempty"`
	Phase        string     `json:"phase,omitempty"`
	ActivePhases []string   `json:"active_phases"`
}

// createJob starts a detached orchestrator for the instance and returns
// 202 as soon as the process runs.
func (s *Server) createJob(w http.ResponseWriter, r *http.Request) error {
	var req createJobRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	inst, err := s.lookupInstance(r.Context(), "instance_id", req.InstanceID)
	if err != nil {
		return err
	}
	// A create checks the project now, not through the cache.
	if err := checkProjectDir(inst); err != nil {
		s.instances.forget(inst.ID)
		return errorf(CodeConflict, "instance %s cannot run: %v", inst.ID, err)
	}
	requirement, err := readReqFile(inst.ProjectDir, req.ReqFile)
	if err != nil {
		return err
	}
	if err := s.checkRunSettings(inst, req.Settings); err != nil {
		return err
	}
	if err := checkRunnable(inst, requirement != ""); err != nil {
		return err
	}

	// One create or cancel at a time per instance, so that two requests
	// cannot both find the instance idle.
	unlock := s.jobs.lock(inst.ID)
	defer unlock()

	if err := s.stopActiveRun(r, inst, req.Force); err != nil {
		return err
	}
	if requirement != "" {
		if err := s.writeRequirement(inst, requirement); err != nil {
			return err
		}
	}
	job, err := s.spawn(inst, req.Settings)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]string{
		"instance_id": inst.ID, "run_id": job.runID, "status": pipeline.StatusRunning,
	})
	return nil
}

// decodeJobInstance decodes a jobRequest body and returns the registered
// instance it names.
func (s *Server) decodeJobInstance(w http.ResponseWriter, r *http.Request) (store.Instance, error) {
	var req jobRequest
	if err := decode(w, r, &req); err != nil {
		return store.Instance{}, err
	}
	return s.lookupInstance(r.Context(), "instance_id", req.InstanceID)
}

// checkRunSettings validates the settings the run would see: the
// project's resolved settings with the request's patch merged over them.
// The orchestrator would reject invalid ones only after the 202.
func (s *Server) checkRunSettings(inst store.Instance, patch settings.Map) error {
	home, err := s.teamsHome()
	if err != nil {
		return err
	}
	resolved, err := settings.Resolve(home, inst.ProjectDir)
	if err != nil {
		return errorf(CodeConflict, "instance %s cannot run: %v", inst.ID, err)
	}
	if err := settings.Validate(settings.Merge(resolved, patch)); err != nil {
		if len(patch) == 0 {
			return errorf(CodeConflict, "instance %s cannot run: invalid settings: %v", inst.ID, err)
		}
		return errorf(CodeInvalidRequest, "settings for this run of %s: %v", inst.ID, err)
	}
	return nil
}

// checkRunnable reports a project that has no team, or no requirement
// when the request brings none.
func checkRunnable(inst store.Instance, hasRequirement bool) error {
	cliqDir := filepath.Join(inst.ProjectDir, ".cliq")
	if _, err := os.Stat(filepath.Join(cliqDir, "team.yml")); err != nil {
		return errorf(CodeConflict, "instance %s has no team assembled; run 'cliq assemble TEAM' in its project first", inst.ID)
	}
	if hasRequirement {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(cliqDir, "req_spec.md"))
	if err != nil || len(bytes.TrimSpace(data)) == 0 {
		return errorf(CodeConflict, "instance %s has no requirement; pass req_file or run 'cliq req' in its project first", inst.ID)
	}
	return nil
}

// readReqFile reads the requirement file named by a create request. The
// path is relative to the project directory, or absolute, and must stay
// inside the project after symbolic links are resolved.
func readReqFile(projectDir, name string) (string, error) {
	if name == "" {
		return "", nil
	}
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(projectDir, path)
	}
	outside := errorf(CodeInvalidRequest, "req_file %q is outside the project directory; give a path inside the project", name)
	if !within(projectDir, filepath.Clean(path)) {
		return "", outside
	}
	// A symbolic link inside the project may still point outside it.
	root, err := filepath.EvalSymlinks(projectDir)
	if err != nil {
		return "", internalError("resolve project directory failed", err)
	}
	resolved, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", errorf(CodeInvalidRequest, "req_file %q does not exist in the project", name)
	}
	if err != nil {
		return "", errorf(CodeInvalidRequest, "req_file %q cannot be read: %v", name, errors.Unwrap(err))
	}
	if !within(root, resolved) {
		return "", outside
	}

	info, err := os.Stat(resolved)
	if err != nil || !info.Mode().IsRegular() {
		return "", errorf(CodeInvalidRequest, "req_file %q is not a regular file", name)
	}
	if info.Size() > maxReqFileBytes {
		return "", errorf(CodeInvalidRequest, "req_file %q is larger than %d bytes", name, maxReqFileBytes)
	}
	data, err := os.ReadFile(resolved)
	if err != nil {
		return "", errorf(CodeInvalidRequest, "req_file %q cannot be read: %v", name, errors.Unwrap(err))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return "", errorf(CodeInvalidRequest, "req_file %q is empty", name)
	}
	return string(data), nil
}

// within reports whether path is dir or below it. Both must be clean.
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// writeRequirement sets the requirement of the next run, keeping the inputs
// given with cliq req.
func (s *Server) writeRequirement(inst store.Instance, text string) error {
	inputs, err := pipeline.ReadInputs(inst.ProjectDir)
	if err != nil {
		return errorf(CodeConflict, "instance %s: %v", inst.ID, err)
	}
	if err := pipeline.WriteRequirement(inst.ProjectDir, text, inputs); err != nil {
		if errors.Is(err, pipeline.ErrInvalidRequirement) || errors.Is(err, pipeline.ErrNotAssembled) {
			return errorf(CodeInvalidRequest, "instance %s: %v", inst.ID, err)
		}
		return internalError("write requirement failed", err)
	}
	return nil
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) error {
	inst, err := s.decodeJobInstance(w, r)
	if err != nil {
		return err
	}
	job, err := s.jobState(inst)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, job)
	return nil
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) error {
	var req struct{}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	list, err := s.db.Instances(r.Context())
	if err != nil {
		return internalError("list instances failed", err)
	}
	jobs := make([]jobResponse, 0, len(list))
	for _, inst := range list {
		job, err := s.jobState(inst)
		if err != nil {
			job = jobResponse{InstanceID: inst.ID, Status: pipeline.StatusIdle, Reason: err.Error(), ActivePhases: []string{}}
		}
		jobs = append(jobs, job)
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": jobs})
	return nil
}

func (s *Server) jobPhases(w http.ResponseWriter, r *http.Request) error {
	inst, err := s.decodeJobInstance(w, r)
	if err != nil {
		return err
	}
	st, err := s.readRunState(inst)
	if err != nil {
		return err
	}
	phases := st.Phases
	if phases == nil {
		phases = []pipeline.PhaseState{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"instance_id": inst.ID, "run_id": st.RunID, "status": st.Status, "phases": phases,
	})
	return nil
}

func (s *Server) jobLog(w http.ResponseWriter, r *http.Request) error {
	var req logRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Tail < 0 {
		return errorf(CodeInvalidRequest, "tail %d is negative; give a number of lines, or 0 for the whole log", req.Tail)
	}
	inst, err := s.lookupInstance(r.Context(), "instance_id", req.InstanceID)
	if err != nil {
		return err
	}
	if err := s.projectProblem(inst); err != nil {
		return errorf(CodeConflict, "instance %s: %v", inst.ID, err)
	}
	lines, err := tailLines(filepath.Join(inst.ProjectDir, ".cliq", "orchestrator.log"), req.Tail)
	if err != nil {
		return internalError("read orchestrator log failed", err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"instance_id": inst.ID, "lines": lines})
	return nil
}

func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request) error {
	inst, err := s.decodeJobInstance(w, r)
	if err != nil {
		return err
	}
	unlock := s.jobs.lock(inst.ID)
	defer unlock()

	active, ok := s.activeRun(inst)
	if !ok {
		return errorf(CodeConflict, "instance %s has no active run to cancel", inst.ID)
	}
	if err := s.signalRun(inst, active); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]string{
		"instance_id": inst.ID, "run_id": active.runID, "status": "cancelling",
	})
	return nil
}

// jobState returns the instance's current or last run. A run that the
// server started and that has not written run.json yet is reported as
// running with its new run id.
func (s *Server) jobState(inst store.Instance) (jobResponse, error) {
	st, err := s.readRunState(inst)
	if err != nil {
		return jobResponse{}, err
	}
	if pending, ok := s.jobs.pending(inst.ID, st.RunID); ok {
		started := pending.started
		return jobResponse{InstanceID: inst.ID, RunID: pending.runID, Status: pipeline.StatusRunning,
			Team: st.Team, StartedAt: &started, ActivePhases: []string{}}, nil
	}
	job := jobResponse{
		InstanceID: inst.ID, RunID: st.RunID, Status: st.Status, Team: st.Team,
		FinishedAt: st.FinishedAt, Reason: st.Reason, Phase: st.Phase,
		ActivePhases: activePhases(st.Phases, ""),
	}
	if job.InstanceID == "" || st.Status == pipeline.StatusIdle {
		job.InstanceID = inst.ID
	}
	if !st.StartedAt.IsZero() {
		started := st.StartedAt
		job.StartedAt = &started
	}
	return job, nil
}

// readRunState reads run.json of the instance's project.
func (s *Server) readRunState(inst store.Instance) (*pipeline.RunState, error) {
	if err := s.projectProblem(inst); err != nil {
		return nil, errorf(CodeConflict, "instance %s: %v", inst.ID, err)
	}
	st, err := s.states.read(inst.ProjectDir)
	if err != nil {
		return nil, internalError("read run state failed", err)
	}
	return st, nil
}

// activePhases returns the names of the running phases, nested ones
// included, with a nested phase's name prefixed by its team phase.
func activePhases(phases []pipeline.PhaseState, prefix string) []string {
	names := []string{}
	for _, ph := range phases {
		name := ph.Name
		if prefix != "" && !strings.HasPrefix(name, prefix) {
			name = prefix + name
		}
		if ph.Status == pipeline.StatusRunning && len(ph.Phases) == 0 {
			names = append(names, name)
		}
		names = append(names, activePhases(ph.Phases, name+".")...)
	}
	return names
}

// tailLines returns the last n lines of the file at path (every line for
// n == 0), reading at most maxLogBytes from its end. A missing file has no
// lines.
func tailLines(path string, n int) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return []string{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()

	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	offset := max(info.Size()-maxLogBytes, 0)
	data, err := io.ReadAll(io.NewSectionReader(f, offset, info.Size()-offset))
	if err != nil {
		return nil, err
	}
	text := strings.TrimSuffix(string(data), "\n")
	if text == "" {
		return []string{}, nil
	}
	lines := strings.Split(text, "\n")
	if offset > 0 {
		// The first line read is probably cut; drop it.
		lines = lines[1:]
	}
	if n > 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, nil
}
