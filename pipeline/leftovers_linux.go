package pipeline

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// groupOwnedBy reports whether process group pgid has a live member whose
// environment contains CLIQ_RUN_ID=runID, that is, a process of that run.
func groupOwnedBy(pgid int, runID string) bool {
	want := []byte("CLIQ_RUN_ID=" + runID)
	for _, pid := range liveGroupMembers(pgid) {
		env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if bytes.Equal(kv, want) {
				return true
			}
		}
	}
	return false
}

// groupHasLiveMember reports whether process group pgid has a member that
// is not a zombie. A zombie is dead and only waits for its parent to reap
// it, which a PID 1 that does not reap never does.
func groupHasLiveMember(pgid int) bool {
	return len(liveGroupMembers(pgid)) > 0
}

// liveGroupMembers returns the pids of the members of process group pgid
// that are not zombies, read from /proc.
func liveGroupMembers(pgid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		state, group, ok := procStat(pid)
		if ok && group == pgid && state != "Z" && state != "X" {
			out = append(out, pid)
		}
	}
	return out
}

// procStat returns the state and process group of pid from
// /proc/<pid>/stat. The command name, in parentheses, may contain spaces and
// parentheses, so fields are counted from the last ')'.
func procStat(pid int) (state string, pgid int, ok bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", 0, false
	}
	// After ")": state, ppid, pgrp, ...
	fields := strings.Fields(s[i+1:])
	if len(fields) < 3 {
		return "", 0, false
	}
	pgid, err = strconv.Atoi(fields[2])
	if err != nil {
		return "", 0, false
	}
	return fields[0], pgid, true
}
