package pipeline

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runLock is the claim of one run on a project: .cliq/run.lock, created
// exclusively and holding the pid of its owner.
type runLock struct {
	path string
}

// claimRunLock creates the lock file at path. A lock whose pid is no longer
// alive is stale and taken over; a live one returns ErrActiveRun.
func claimRunLock(path string) (*runLock, error) {
	for attempt := 0; attempt < 3; attempt++ {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			_, werr := fmt.Fprintf(f, "%d\n", os.Getpid())
			cerr := f.Close()
			if werr != nil || cerr != nil {
				os.Remove(path)
				return nil, fmt.Errorf("write run lock: %w", errors.Join(werr, cerr))
			}
			return &runLock{path: path}, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create run lock: %w", err)
		}
		pid, ok := readLockPID(path)
		if ok && processAlive(pid) {
			return nil, fmt.Errorf("%w: process %d owns %s", ErrActiveRun, pid, path)
		}
		// A lock left by a dead process, or one being written right now
		// (no pid yet). Removing it races with other claimers, which is
		// why the retry goes through O_EXCL again.
		if !ok && lockIsFresh(path) {
			return nil, fmt.Errorf("%w: %s is being claimed", ErrActiveRun, path)
		}
		os.Remove(path)
	}
	return nil, fmt.Errorf("%w: could not claim %s", ErrActiveRun, path)
}

// release removes the lock file.
func (l *runLock) release() error {
	if err := os.Remove(l.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove run lock: %w", err)
	}
	return nil
}

// readLockPID returns the pid written in the lock file at path.
func readLockPID(path string) (int, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// lockIsFresh reports whether the file at path was modified within the last
// few seconds, which for an empty lock means its owner is still writing it.
func lockIsFresh(path string) bool {
	info, err := os.Stat(path)
	return err == nil && time.Since(info.ModTime()) < 5*time.Second
}

// processAlive reports whether a process with this pid exists. EPERM means
// it exists but belongs to another user.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// crockford is the base32 alphabet without I, L, O and U, whose strings
// sort in the same order as the numbers they encode.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// newRunID returns "run_" and 26 base32 characters: 48 bits of Unix
// milliseconds followed by 80 random bits, so ids sort by start time.
func newRunID() string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	binary.BigEndian.PutUint64(b[0:8], ms<<16)
	// crypto/rand.Read never returns an error on supported platforms.
	_, _ = rand.Read(b[6:])

	hi := binary.BigEndian.Uint64(b[0:8])
	lo := binary.BigEndian.Uint64(b[8:16])
	var out [26]byte
	// 26 characters of 5 bits carry 130 bits; the top two are zero.
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return "run_" + string(out[:])
}
