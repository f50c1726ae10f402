//go:build !linux

package pipeline

// enableReaping does nothing outside Linux: orphans go to PID 1, which
// reaps them.
func enableReaping() {}

// reapGroup does nothing outside Linux, where this process adopts no
// orphans.
func reapGroup(pgid int) {}
