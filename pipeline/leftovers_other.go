//go:build !linux

package pipeline

import (
	"errors"
	"syscall"
)

// groupOwnedBy reports whether process group pgid exists. NOTE: without
// /proc the run a group belongs to cannot be checked, so a group id reused
// by another program of this user would be killed too.
func groupOwnedBy(pgid int, runID string) bool {
	return groupHasLiveMember(pgid)
}

// groupHasLiveMember reports whether process group pgid has a member.
// Zombies count, since they cannot be told apart without /proc.
func groupHasLiveMember(pgid int) bool {
	err := syscall.Kill(-pgid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
