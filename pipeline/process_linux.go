package pipeline

import (
	"sync"
	"syscall"
)

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER from <linux/prctl.h>.
const prSetChildSubreaper = 36

var subreaperOnce sync.Once

// enableReaping makes this process the child subreaper of its descendants.
// A phase's background grandchild whose parent exited is then adopted by
// this process instead of PID 1, so killGroup can reap it. Without this, a
// PID 1 that does not reap (common in containers) would leave the killed
// grandchild as a zombie that still counts as a member of the group.
func enableReaping() {
	subreaperOnce.Do(func() {
		// An error leaves orphans to PID 1; killGroup then waits for its
		// timeout on zombies but the processes are dead all the same.
		_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	})
}

// reapGroup collects every exited child in process group pgid without
// blocking. Only members of the group are touched, so other children of
// this process (and the os/exec Wait calls for them) are not affected.
func reapGroup(pgid int) {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-pgid, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
	}
}
