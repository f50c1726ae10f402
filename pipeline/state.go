package pipeline

import "time"

// Run statuses.
const (
	StatusIdle      = "idle"
	StatusRunning   = "running"
	StatusCompleted = "completed"
	StatusFailed    = "failed"
	StatusEscalated = "escalated"
	StatusCancelled = "cancelled"
)

// Phase statuses, besides running, failed, escalated and cancelled, which
// phases share with runs.
const (
	PhasePending = "pending"
	PhaseDone    = "done"
	PhaseSkipped = "skipped"
)

// RunState is the content of .cliq/run.json: the state of the current or
// last run, rewritten atomically on every change.
type RunState struct {
	InstanceID string       `json:"instance_id"`
	RunID      string       `json:"run_id"`
	Status     string       `json:"status"`
	Team       string       `json:"team"`
	PID        int          `json:"pid"`
	StartedAt  time.Time    `json:"started_at"`
	FinishedAt *time.Time   `json:"finished_at"`
	Reason     string       `json:"reason,omitempty"`
	Phase      string       `json:"phase,omitempty"`
	Phases     []PhaseState `json:"phases"`
}

// PhaseState is the state of one phase within a run.
type PhaseState struct {
	Name          string       `json:"name"`
	Type          string       `json:"type"`
	Agent         string       `json:"agent"`
	Status        string       `json:"status"`
	DependsOn     []string     `json:"depends_on"`
	Iteration     int          `json:"iteration"`
	MaxIterations int          `json:"max_iterations,omitempty"`
	Verdict       string       `json:"verdict,omitempty"`
	StartedAt     *time.Time   `json:"started_at"`
	FinishedAt    *time.Time   `json:"finished_at"`
	Depth         int          `json:"depth"`
	Error         string       `json:"error,omitempty"`
	ExitCode      *int         `json:"exit_code,omitempty"`
	Phases        []PhaseState `json:"phases,omitempty"`
	// PGIDs lists the process groups of the phase that may still have
	// members: a group is added when its process starts and removed once
	// the group is empty. KillLeftovers kills what a dead orchestrator
	// left here.
	PGIDs []int `json:"pgids,omitempty"`
}

// WSInfo is the content of .cliq/signals/_ws.json: where the running
// orchestrator serves its events.
type WSInfo struct {
	PID   int    `json:"pid"`
	Port  int    `json:"port"`
	Token string `json:"token"`
	RunID string `json:"run_id"`
}
