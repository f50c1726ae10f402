package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Client actions accepted on a hub WebSocket connection.
const (
	ActionSubscribe   = "subscribe"
	ActionUnsubscribe = "unsubscribe"
)

// Message types the hub sends besides events.
const (
	TypeSubscribed   = "subscribed"
	TypeUnsubscribed = "unsubscribed"
	TypeError        = "error"
)

// Channel names. A job channel is JobChannelPrefix followed by an instance
// id and carries every event of that instance; JobsChannel carries the
// pipeline-level events (start, done, error at depth 0) of every instance.
const (
	JobsChannel      = "jobs"
	JobChannelPrefix = "job:"
)

// Error codes sent in an ErrorMessage.
const (
	CodeInvalidJSON    = "invalid_json"
	CodeInvalidRequest = "invalid_request"
	CodeUnknownAction  = "unknown_action"
	CodeUnknownChannel = "unknown_channel"
	CodeTooLarge       = "too_large"
	CodeReplayGap      = "replay_gap"
)

// maxInstanceIDLen bounds the instance id in a job channel name, so that a
// client cannot make the hub keep arbitrarily long keys.
const maxInstanceIDLen = 128

// ClientMessage is a message from a WebSocket client to the hub, for
// example {"action":"subscribe","channel":"job:cliq-a1b2c3","since":4}.
type ClientMessage struct {
	Action  string `json:"action"`
	Channel string `json:"channel"`
	// Since, when set on a subscribe to a job channel, requests the events
	// of the current run with a seq above it before the live ones.
	Since *int64 `json:"since,omitempty"`
}

// Ack acknowledges a subscribe or an unsubscribe: {"type":"subscribed",
// "channel":"jobs"}.
type Ack struct {
	Type    string `json:"type"`
	Channel string `json:"channel"`
}

// ErrorMessage reports a client message that the hub could not act on. The
// connection stays open after it.
type ErrorMessage struct {
	Type  string      `json:"type"`
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the code and the human-readable message of an ErrorMessage.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// channelError is a client message problem with the code to send back.
type channelError struct {
	code    string
	message string
}

func (e *channelError) Error() string { return e.code + ": " + e.message }

// parseClientMessage decodes and validates one client frame.
func parseClientMessage(data []byte) (ClientMessage, *channelError) {
	var m ClientMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return m, decodeError(err)
	}
	switch m.Action {
	case ActionSubscribe, ActionUnsubscribe:
	default:
		return m, &channelError{CodeUnknownAction, fmt.Sprintf(
			"unknown action %q; use %q or %q",
			m.Action, ActionSubscribe, ActionUnsubscribe)}
	}
	if err := validateChannel(m.Channel); err != nil {
		return m, err
	}
	if m.Since == nil {
		return m, nil
	}
	if m.Action != ActionSubscribe || m.Channel == JobsChannel {
		return m, &channelError{CodeInvalidRequest, fmt.Sprintf(
			"since is only accepted when subscribing to a %s<instance_id> "+
				"channel, not with %s %q", JobChannelPrefix, m.Action, m.Channel)}
	}
	if *m.Since < 0 {
		return m, &channelError{CodeInvalidRequest, fmt.Sprintf(
			"since %d is negative; use 0 for every event of the current run",
			*m.Since)}
	}
	return m, nil
}

// decodeError describes a frame that does not decode into a
// ClientMessage in the protocol's terms, without Go type names.
func decodeError(err error) *channelError {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		want := "a string"
		if typeErr.Field == "since" {
			want = "a non-negative integer"
		}
		return &channelError{CodeInvalidRequest, fmt.Sprintf(
			"field %q must be %s, got a JSON %s", typeErr.Field, want, typeErr.Value)}
	}
	if errors.As(err, &typeErr) {
		return &channelError{CodeInvalidJSON, fmt.Sprintf(
			"message must be a JSON object, got a JSON %s; send e.g. "+
				`{"action":"subscribe","channel":"jobs"}`, typeErr.Value)}
	}
	return &channelError{CodeInvalidJSON, fmt.Sprintf(
		"message is not valid JSON (%v); send e.g. "+
			`{"action":"subscribe","channel":"jobs"}`, err)}
}

// validateChannel accepts JobsChannel and job:<instance_id>.
func validateChannel(name string) *channelError {
	if name == JobsChannel {
		return nil
	}
	id, ok := strings.CutPrefix(name, JobChannelPrefix)
	if ok && id != "" && len(id) <= maxInstanceIDLen && !strings.ContainsAny(id, " \t\r\n") {
		return nil
	}
	return &channelError{CodeUnknownChannel, fmt.Sprintf(
		"unknown channel %q; use %q or %s<instance_id>",
		truncate(name, 80), JobsChannel, JobChannelPrefix)}
}

// JobChannel returns the name of the channel that carries every event of
// the instance with the given id.
func JobChannel(instanceID string) string { return JobChannelPrefix + instanceID }

// pipelineLevel reports whether e belongs on JobsChannel.
func pipelineLevel(e Event) bool {
	if e.Depth != 0 {
		return false
	}
	return e.Type == PipelineStart || e.Type == PipelineDone || e.Type == PipelineError
}

// encodeReply encodes an Ack or an ErrorMessage. Both contain only strings,
// so encoding cannot fail.
func encodeReply(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// ackFrame returns the encoded acknowledgement of type typ for channel.
func ackFrame(typ, channel string) *frame {
	return &frame{data: encodeReply(Ack{Type: typ, Channel: channel})}
}

// errorFrame returns the encoded ErrorMessage for err.
func errorFrame(err *channelError) *frame {
	msg := ErrorMessage{Type: TypeError, Error: ErrorDetail{Code: err.code, Message: err.message}}
	return &frame{data: encodeReply(msg)}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// replayGapMessage explains that the events of run runID between since and
// first are no longer kept by the hub.
func replayGapMessage(runID string, since, first int64) string {
	return fmt.Sprintf("events of run %s with seq %d to %d are no longer kept; "+
		"read them from the run's events.jsonl", runID, since+1, first-1)
}
