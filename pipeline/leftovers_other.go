//go:build !linux

package pipeline

import (
	"errors"
	"syscall"
)

// groupOwnedBy reports whether process group pgid exists. NOTE: without
// /proc the run of a group cannot be checked, so a group id reused by
// another program of this user is killed too.
func groupOwnedBy(pgid int, runID string) bool {
	return groupHasLiveMember(pgid)
}

// groupHasLiveMember reports whether process group pgid has a member.
// Zombies count, because only /proc shows them apart.
func groupHasLiveMember(pgid int) bool {
	err := syscall.Kill(-pgid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
