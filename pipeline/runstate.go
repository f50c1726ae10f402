package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"cliq/settings"
)

// ReadState reads the run state of the project at projectDir from
// .cliq/run.json. A project that has never run gets a state with status
// idle and no error.
func ReadState(projectDir string) (*RunState, error) {
	return readStateFile(filepath.Join(projectDir, ".cliq", "run.json"))
}

// readStateFile reads the run state at path, a run.json file. A missing
// file gives a state with status idle and no error.
func readStateFile(path string) (*RunState, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &RunState{Status: StatusIdle, Phases: []PhaseState{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read run state: %w", err)
	}
	var st RunState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("read run state %s: invalid JSON: %w", path, err)
	}
	return &st, nil
}

// stateFile is the in-memory RunState of a run, written to run.json after
// every change.
type stateFile struct {
	mu    sync.Mutex
	path  string
	state RunState
	index map[string]int // phase name -> index in state.Phases
	// onWrite, when set, receives a copy of the state after every
	// successful write. It runs with mu held.
	onWrite func(RunState)
}

// newStateFile returns a stateFile for st that writes to path.
func newStateFile(path string, st RunState) *stateFile {
	index := make(map[string]int, len(st.Phases))
	for i, ph := range st.Phases {
		index[ph.Name] = i
	}
	return &stateFile{path: path, state: st, index: index}
}

// update applies fn to the run state and writes run.json atomically.
func (s *stateFile) update(fn func(*RunState)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.state)
	return s.writeLocked()
}

// updatePhase applies fn to the state of one phase and writes run.json.
func (s *stateFile) updatePhase(name string, fn func(*PhaseState)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.index[name]
	if !ok {
		return fmt.Errorf("update run state: unknown phase %q", name)
	}
	fn(&s.state.Phases[i])
	return s.writeLocked()
}

// snapshot returns a deep copy of the current state.
func (s *stateFile) snapshot() *RunState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	st.Phases = append([]PhaseState(nil), s.state.Phases...)
	return &st
}

func (s *stateFile) writeLocked() error {
	data, err := json.MarshalIndent(&s.state, "", "  ")
	if err != nil {
		return fmt.Errorf("encode run state: %w", err)
	}
	if err := settings.WriteAtomic(s.path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write run state: %w", err)
	}
	if s.onWrite != nil {
		st := s.state
		st.Phases = append([]PhaseState(nil), s.state.Phases...)
		s.onWrite(st)
	}
	return nil
}

// timePtr returns a pointer to t in UTC, for the optional times of the
// state.
func timePtr(t time.Time) *time.Time {
	t = t.UTC()
	return &t
}
