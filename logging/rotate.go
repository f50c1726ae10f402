package logging

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// RotatingFile is an io.WriteCloser that appends to a file and rotates it
// by size: when a write would grow the file past maxBytes, path becomes
// path.1, path.1 becomes path.2 and so on, and the oldest beyond maxFiles
// is removed. A single write larger than maxBytes still goes whole into a
// fresh file. It is safe for concurrent use.
type RotatingFile struct {
	mu       sync.Mutex
	path     string
	maxBytes int64
	maxFiles int
	file     *os.File
	size     int64
}

// NewRotatingFile opens path for appending (mode 0600), creating it and its
// directory (mode 0700) when needed. maxBytes must be positive and maxFiles,
// the number of rotated files kept, at least 1.
func NewRotatingFile(path string, maxBytes int64, maxFiles int) (*RotatingFile, error) {
	if maxBytes <= 0 || maxFiles < 1 {
		return nil, fmt.Errorf("log rotation of %s: max size %d and max files %d must be positive", path, maxBytes, maxFiles)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create log directory: %w", err)
	}
	r := &RotatingFile{path: path, maxBytes: maxBytes, maxFiles: maxFiles}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

// Path returns the path of the current log file.
func (r *RotatingFile) Path() string { return r.path }

// SetLimits changes the rotation size and the number of rotated files kept;
// values that are not positive leave the old limit. It takes effect on the
// next write.
func (r *RotatingFile) SetLimits(maxBytes int64, maxFiles int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if maxBytes > 0 {
		r.maxBytes = maxBytes
	}
	if maxFiles > 0 {
		r.maxFiles = maxFiles
	}
}

// Write appends p, rotating first when p would take the file past its
// maximum size.
func (r *RotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.file == nil {
		return 0, fs.ErrClosed
	}
	if r.size > 0 && r.size+int64(len(p)) > r.maxBytes {
		if err := r.rotate(); err != nil {
			return 0, fmt.Errorf("rotate %s: %w", r.path, err)
		}
	}
	n, err := r.file.Write(p)
	r.size += int64(n)
	return n, err
}

// Close closes the current file. Later writes return fs.ErrClosed.
func (r *RotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.file == nil {
		return nil
	}
	err := r.file.Close()
	r.file = nil
	return err
}

func (r *RotatingFile) open() error {
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log file: %w", err)
	}
	r.file, r.size = f, info.Size()
	return nil
}

// rotate shifts path.N-1 to path.N down to path to path.1, drops what lies
// beyond maxFiles, and opens a new empty file.
func (r *RotatingFile) rotate() error {
	if err := r.file.Close(); err != nil {
		return err
	}
	r.file = nil
	for i := r.maxFiles; ; i++ {
		// Remove the oldest kept file and any left over from a larger
		// max_files setting.
		err := os.Remove(RotatedPath(r.path, i))
		if errors.Is(err, fs.ErrNotExist) && i > r.maxFiles {
			break
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	for i := r.maxFiles - 1; i >= 1; i-- {
		err := os.Rename(RotatedPath(r.path, i), RotatedPath(r.path, i+1))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(r.path, RotatedPath(r.path, 1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return r.open()
}

// RotatedPath returns the path of the n-th rotated file of path: path.n,
// where 1 is the newest.
func RotatedPath(path string, n int) string {
	return path + "." + strconv.Itoa(n)
}
