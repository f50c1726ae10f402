// Package events defines the pipeline event, the channel-based broadcast hub
// that fans events out to WebSocket subscribers, the messages of the
// WebSocket protocol, and the client that follows an orchestrator's event
// server.
package events

import "time"

// Event types emitted by every pipeline run, in the order they can occur.
const (
	PipelineStart = "pipeline_start"
	PhaseStart    = "phase_start"
	PhaseDone     = "phase_done"
	PhaseError    = "phase_error"
	GateVerdict   = "gate_verdict"
	GateIteration = "gate_iteration"
	PipelineDone  = "pipeline_done"
	PipelineError = "pipeline_error"
)

// Event is one step of a pipeline run. The same shape is written to
// events.jsonl, served by an orchestrator's event server and sent to API
// clients, which also see Channel.
type Event struct {
	Type       string         `json:"type"`
	InstanceID string         `json:"instance_id"`
	RunID      string         `json:"run_id"`
	Seq        int64          `json:"seq"`
	Time       time.Time      `json:"time"`
	Phase      string         `json:"phase,omitempty"`
	Depth      int            `json:"depth"`
	Data       map[string]any `json:"data,omitempty"`
	Channel    string         `json:"channel,omitempty"`
}

// Final reports whether e ends its run: no event of the same run follows it.
// Events relayed from a nested team (Depth > 0) never end the parent run.
func (e Event) Final() bool {
	return e.Depth == 0 && (e.Type == PipelineDone || e.Type == PipelineError)
}
