package server

import (
	"context"
	"net/http"
	"os"
	"time"
)

// readyTimeout bounds the database round trip of /readyz.
const readyTimeout = 2 * time.Second

// healthResponse is the body of POST /health/.
type healthResponse struct {
	Status string `json:"status"`
	PID    int    `json:"pid"`
}

// health replies to POST /health/ with the server's pid, which cliq server
// status compares with server.json.
func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, healthResponse{Status: "ok", PID: os.Getpid()})
	return nil
}

// healthz is the liveness probe. It never touches the database.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readyz is the readiness probe: 200 when the database replies within
// readyTimeout, else 503.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := s.db.Ping(ctx); err != nil {
		return &Error{Code: CodeUnavailable, Message: "database is not reachable", Err: err}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}
