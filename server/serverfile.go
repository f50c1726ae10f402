package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"cliq/settings"
)

// InfoFile is the name of the file in CLIQ_HOME that describes the running
// server.
const InfoFile = "server.json"

// probeTimeout bounds the health request that decides whether a server is
// alive.
const probeTimeout = time.Second

// ErrNoServer is returned by ReadInfo when no server.json exists.
var ErrNoServer = errors.New("no server running")

// Info is the content of server.json: how local tools reach the server
// that owns a CLIQ_HOME.
type Info struct {
	PID       int       `json:"pid"`
	Port      int       `json:"port"`
	URL       string    `json:"url"`
	Token     string    `json:"token"`
	StartedAt time.Time `json:"started_at"`
	Version   string    `json:"version"`
}

// InfoPath returns the path of server.json in home.
func InfoPath(home string) string { return filepath.Join(home, InfoFile) }

// ReadInfo reads server.json from home. It returns an error wrapping
// ErrNoServer when the file does not exist.
func ReadInfo(home string) (*Info, error) {
	path := InfoPath(home)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist", ErrNoServer, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read server info: %w", err)
	}
	var info Info
	if err := json.Unmarshal(data, &info); err != nil {
		return nil, fmt.Errorf("read server info %s: invalid JSON: %w", path, err)
	}
	return &info, nil
}

// writeInfo writes server.json atomically with mode 0600, because it
// contains the session token.
func writeInfo(home string, info Info) error {
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return fmt.Errorf("encode server info: %w", err)
	}
	if err := settings.WriteAtomic(InfoPath(home), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write server info: %w", err)
	}
	return nil
}

// removeInfo removes server.json if it still names pid, so that a server
// never removes the file of another server that replaced it.
func removeInfo(home string, pid int) error {
	info, err := ReadInfo(home)
	if errors.Is(err, ErrNoServer) {
		return nil
	}
	if err == nil && info.PID != pid {
		return nil
	}
	if err := os.Remove(InfoPath(home)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove server info: %w", err)
	}
	return nil
}

// Server states reported by Check.
const (
	StateRunning = "running"
	StateStopped = "stopped"
	StateStale   = "stale"
)

// Status is the outcome of Check.
type Status struct {
	// State is StateRunning, StateStopped (no server.json) or StateStale
	// (a server.json whose server is gone; Check removed it).
	State string
	// Info is the content of server.json; nil for StateStopped.
	Info *Info
	// Reason is the cause of a stale server.json.
	Reason string
}

// Check reads server.json in home and probes the server it names. A file
// whose pid is dead, or whose port does not return the health response
// with the same pid (a crashed server whose pid now belongs to another
// program), is stale: Check removes it and reports StateStale.
func Check(ctx context.Context, home string) (Status, error) {
	info, err := ReadInfo(home)
	if errors.Is(err, ErrNoServer) {
		return Status{State: StateStopped}, nil
	}
	if err != nil {
		// An unreadable or corrupt file cannot describe a live server.
		if rmErr := os.Remove(InfoPath(home)); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
			return Status{}, errors.Join(err, rmErr)
		}
		return Status{State: StateStale, Reason: err.Error()}, nil
	}
	if err := Probe(ctx, info); err != nil {
		if rmErr := os.Remove(InfoPath(home)); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
			return Status{}, fmt.Errorf("remove stale server info: %w", rmErr)
		}
		return Status{State: StateStale, Info: info, Reason: err.Error()}, nil
	}
	return Status{State: StateRunning, Info: info}, nil
}

// Probe returns nil when the server described by info is alive: its pid
// exists and POST /health/ on its port returns the same pid within a
// second. The error names the check that failed.
func Probe(ctx context.Context, info *Info) error {
	if !processAlive(info.PID) {
		return fmt.Errorf("process %d is not running", info.PID)
	}
	if info.Port <= 0 || info.Port > 65535 {
		return fmt.Errorf("port %d is not a valid port", info.Port)
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()

	endpoint := "http://" + net.JoinHostPort(probeHost(info), strconv.Itoa(info.Port)) + "/health/"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, nil)
	if err != nil {
		return fmt.Errorf("build health request: %w", err)
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return fmt.Errorf("port %d does not respond to the health check: %w", info.Port, err)
	}
	defer resp.Body.Close()

	var health healthResponse
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal(body, &health) != nil {
		return fmt.Errorf("port %d is served by something other than a cliq server (status %d)", info.Port, resp.StatusCode)
	}
	if health.PID != info.PID {
		return fmt.Errorf("port %d is served by cliq pid %d, not pid %d", info.Port, health.PID, info.PID)
	}
	return nil
}

// probeHost returns the host of info.URL, or 127.0.0.1 when it has none.
func probeHost(info *Info) string {
	if u, err := url.Parse(info.URL); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	return "127.0.0.1"
}

// probeClient is used for health checks only: no proxy, no keep-alive.
var probeClient = &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// processAlive reports whether a process with this pid exists. EPERM means
// it exists but belongs to another user.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
