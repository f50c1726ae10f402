package pipeline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// ErrLeftovers reports process groups of a previous run that were still
// present after KillLeftovers killed them and waited.
var ErrLeftovers = errors.New("processes of a previous run are still present")

// leftoverWait bounds how long KillLeftovers waits for killed groups to
// exit.
const leftoverWait = 5 * time.Second

// leftoverGroup is a process group recorded in a run.json, with the run
// whose processes it held.
type leftoverGroup struct {
	pgid  int
	runID string
}

// KillLeftovers ends the processes that a dead orchestrator left behind in
// the project at projectDir. It reads .cliq/run.json and the run.json of
// every nested run under .cliq/teams/, and for each file whose orchestrator
// pid no longer exists, sends SIGKILL to every recorded process group
// (PhaseState.PGIDs) that still has a member of that run. It then waits, up
// to 5 seconds, until those groups have no live member, and returns the
// process group ids it killed. A run whose orchestrator is alive is left
// alone.
//
// Guard against pid reuse (Linux): a group is killed only when one of its
// live members has CLIQ_RUN_ID=<run id> in /proc/<pid>/environ, the
// variable every phase process gets. A group id reused by an unrelated
// program has no such member. NOTE: outside Linux there is no /proc, so
// any existing group with a recorded id is killed.
func KillLeftovers(projectDir string) (killed []int, err error) {
	groups := recordedGroups(filepath.Join(projectDir, ".cliq"))
	for _, g := range groups {
		if !groupOwnedBy(g.pgid, g.runID) {
			continue
		}
		if err := syscall.Kill(-g.pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return killed, fmt.Errorf("kill process group %d: %w", g.pgid, err)
		}
		killed = append(killed, g.pgid)
	}
	if left := waitGroupsGone(killed, leftoverWait); len(left) > 0 {
		return killed, fmt.Errorf("%w: process groups %v", ErrLeftovers, left)
	}
	return killed, nil
}

// recordedGroups returns the process groups recorded in cliqDir/run.json
// and in the run.json files of its nested runs, for the runs whose
// orchestrator is gone. Unreadable files count as recording nothing.
func recordedGroups(cliqDir string) []leftoverGroup {
	var out []leftoverGroup
	seen := map[int]bool{}
	add := func(runID string, pgids []int) {
		for _, g := range pgids {
			if g > 1 && !seen[g] {
				seen[g] = true
				out = append(out, leftoverGroup{pgid: g, runID: runID})
			}
		}
	}
	var walk func(dir string, depth int)
	walk = func(dir string, depth int) {
		st, err := readStateFile(filepath.Join(dir, "run.json"))
		if err == nil && st.RunID != "" {
			if processAlive(st.PID) {
				return // a live orchestrator owns this run and its nested runs
			}
			add(st.RunID, phaseGroups(st.Phases))
		}
		if depth >= maxNestedWalk {
			return
		}
		entries, _ := os.ReadDir(filepath.Join(dir, nestedRunsDirName))
		for _, e := range entries {
			if e.IsDir() {
				walk(filepath.Join(dir, nestedRunsDirName, e.Name()), depth+1)
			}
		}
	}
	walk(cliqDir, 0)
	return out
}

// maxNestedWalk bounds the nesting that recordedGroups follows, well above
// the highest teams.max_depth.
const maxNestedWalk = 1000

// phaseGroups returns the process groups recorded in phases and in their
// nested phases.
func phaseGroups(phases []PhaseState) []int {
	var out []int
	for _, ph := range phases {
		out = append(out, ph.PGIDs...)
		out = append(out, phaseGroups(ph.Phases)...)
	}
	return out
}

// waitGroupsGone waits until none of the groups has a live member, or
// until timeout, and returns the groups still present. It sends SIGKILL
// again while a group has live members.
func waitGroupsGone(pgids []int, timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	left := slices.Clone(pgids)
	for {
		left = slices.DeleteFunc(left, func(g int) bool { return !groupHasLiveMember(g) })
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		for _, g := range left {
			_ = syscall.Kill(-g, syscall.SIGKILL)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
