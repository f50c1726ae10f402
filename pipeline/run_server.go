package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"cliq/events"
	"cliq/settings"
)

// followerGrace bounds how long a finished run waits for the followers of
// its event server to read the last events.
const followerGrace = 2 * time.Second

// eventServer is the orchestrator's WebSocket event server of one run.
type eventServer struct {
	feed   *events.Feed
	srv    *http.Server
	wsPath string
	served chan struct{}
	logger *slog.Logger
	runID  string
}

// ReadWSInfo reads .cliq/signals/_ws.json of the project at projectDir: the
// address and token of its running orchestrator's event server. The error
// wraps fs.ErrNotExist when no orchestrator is running.
func ReadWSInfo(projectDir string) (*WSInfo, error) {
	data, err := os.ReadFile(filepath.Join(projectDir, ".cliq", "signals", "_ws.json"))
	if err != nil {
		return nil, fmt.Errorf("read event server address: %w", err)
	}
	var info WSInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return nil, fmt.Errorf("read event server address: invalid JSON: %w", err)
	}
	return &info, nil
}

// startServer starts the event server on a free port of 127.0.0.1, makes
// it receive every event, and writes signals/_ws.json (mode 0600).
func (r *runner) startServer() error {
	token, err := randomToken()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("start event server: %w", err)
	}

	s := &eventServer{
		feed:   events.NewFeed(),
		wsPath: filepath.Join(r.p.cliqDir, "signals", "_ws.json"),
		served: make(chan struct{}),
		logger: r.p.opts.Logger,
		runID:  r.runID,
	}
	s.srv = &http.Server{Handler: s.feed.Handler(token), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.p.opts.Logger.Error("event server failed", "error", err, "run_id", r.runID)
		}
	}()

	info := WSInfo{PID: os.Getpid(), Port: ln.Addr().(*net.TCPAddr).Port, Token: token, RunID: r.runID}
	data, err := json.Marshal(info)
	if err == nil {
		err = settings.WriteAtomic(s.wsPath, append(data, '\n'), 0o600)
	}
	if err != nil {
		s.srv.Close()
		<-s.served
		return fmt.Errorf("write %s: %w", s.wsPath, err)
	}
	r.events.addSink(s.feed.Append)
	r.server = s
	return nil
}

// stop closes the feed, gives followers up to followerGrace to read the
// remaining events, then stops the server and removes _ws.json.
func (s *eventServer) stop() {
	if s == nil {
		return
	}
	s.feed.Close()
	ctx, cancel := context.WithTimeout(context.Background(), followerGrace)
	defer cancel()
	_ = s.feed.Wait(ctx)
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
	<-s.served
	if err := os.Remove(s.wsPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.logger.Error("remove _ws.json failed", "error", err, "run_id", s.runID)
	}
}

// randomToken returns 32 random bytes in hex, the event server's token.
func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate event server token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
