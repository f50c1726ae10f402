package pipeline

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"cliq/events"
)

// eventLog numbers the events of one run and hands each one, in order, to
// events.jsonl, the event server's feed and the OnEvent callback.
type eventLog struct {
	mu         sync.Mutex
	instanceID string
	runID      string
	seq        int64
	file       *os.File
	sinks      []func(events.Event)
	logger     *slog.Logger
	failed     bool
}

// openEventLog creates (or truncates) path for the events of run runID.
func openEventLog(path, instanceID, runID string, logger *slog.Logger) (*eventLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open event log: %w", err)
	}
	return &eventLog{instanceID: instanceID, runID: runID, file: f, logger: logger}, nil
}

// addSink registers fn to receive every later event, in order. Sinks run
// with the log's lock held, so they must not emit events themselves.
func (l *eventLog) addSink(fn func(events.Event)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sinks = append(l.sinks, fn)
}

// emit assigns the next seq to a new event, appends it to events.jsonl and
// passes it to every sink. A failed write is logged once and does not stop
// the run, because the events still reach the sinks.
func (l *eventLog) emit(typ, phase string, data map[string]any) events.Event {
	l.mu.Lock()
	defer l.mu.Unlock()

	l.seq++
	e := events.Event{
		Type:       typ,
		InstanceID: l.instanceID,
		RunID:      l.runID,
		Seq:        l.seq,
		Time:       time.Now().UTC(),
		Phase:      phase,
		Data:       data,
	}
	l.publishLocked(e)
	return e
}

// relay appends an event of the nested run of team phase teamPhase as an
// event of this run: it gets this run's ids and next seq, its phase is
// prefixed with teamPhase, and its depth is raised by one. Time and data
// stay as the nested run recorded them, and the data map is shared, so no
// one may change it.
func (l *eventLog) relay(e events.Event, teamPhase string) {
	l.mu.Lock()
	defer l.mu.Unlock()

	l.seq++
	l.publishLocked(events.Event{
		Type:       e.Type,
		InstanceID: l.instanceID,
		RunID:      l.runID,
		Seq:        l.seq,
		Time:       e.Time,
		Phase:      nestedPhaseName(teamPhase, e.Phase),
		Depth:      e.Depth + 1,
		Data:       e.Data,
	})
}

// publishLocked writes e to events.jsonl and passes it to every sink.
func (l *eventLog) publishLocked(e events.Event) {
	l.write(e)
	for _, sink := range l.sinks {
		sink(e)
	}
}

// write appends e as one JSON line.
func (l *eventLog) write(e events.Event) {
	line, err := json.Marshal(e)
	if err == nil {
		_, err = l.file.Write(append(line, '\n'))
	}
	if err != nil && !l.failed {
		l.failed = true
		l.logger.Error("write events.jsonl failed", "error", err,
			"run_id", l.runID, "seq", e.Seq)
	}
}

// close closes events.jsonl.
func (l *eventLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.file.Close()
}

// textLog writes the readable orchestrator.log, one timestamped line per
// step, and the same lines without timestamps to the progress writer.
type textLog struct {
	mu       sync.Mutex
	file     *os.File
	progress io.Writer
}

// openTextLog creates (or truncates) path; progress may be nil.
func openTextLog(path string, progress io.Writer) (*textLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open orchestrator log: %w", err)
	}
	return &textLog{file: f, progress: progress}, nil
}

// printf writes one line. Write errors are ignored: the log is for people,
// and the run's state lives in run.json and events.jsonl.
func (l *textLog) printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	stamp := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")

	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.file, "%s %s\n", stamp, msg)
	if l.progress != nil {
		fmt.Fprintln(l.progress, msg)
	}
}

// close closes orchestrator.log.
func (l *textLog) close() error {
	return l.file.Close()
}
