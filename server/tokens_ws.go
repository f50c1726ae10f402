package server

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"cliq/auth"
	"cliq/store"
)

// TokenRecheckInterval is how often the server checks again the database
// tokens that have open WebSocket connections. A token revoked through
// another replica closes this server's connections within about this time.
const TokenRecheckInterval = 2 * time.Second

// recheckBatch is the number of tracked tokens above which a recheck reads
// the whole tokens table once instead of one row per token.
const recheckBatch = 8

// tokenConns counts the open WebSocket connections of each database token.
// The zero value is ready to use.
type tokenConns struct {
	mu     sync.Mutex
	counts map[string]int
	// idle is closed when the last tracked connection ends, which stops the
	// watcher. It is nil while no watcher runs.
	idle chan struct{}
}

// add counts a new connection of token id. When no watcher runs, it
// returns a new idle channel for the watcher that the caller must start.
func (c *tokenConns) add(id string) (idle chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = make(map[string]int)
	}
	c.counts[id]++
	if c.idle != nil {
		return nil
	}
	c.idle = make(chan struct{})
	return c.idle
}

// remove records the end of a connection of token id.
func (c *tokenConns) remove(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[id]--
	if c.counts[id] <= 0 {
		delete(c.counts, id)
	}
	if len(c.counts) == 0 && c.idle != nil {
		close(c.idle)
		c.idle = nil
	}
}

// ids returns the tokens that have open connections.
func (c *tokenConns) ids() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, 0, len(c.counts))
	for id := range c.counts {
		ids = append(ids, id)
	}
	return ids
}

// trackTokenConn wraps the hub's WebSocket handler, which returns only when
// the connection is done, to record which database tokens have open
// connections. It runs after the token check.
func (s *Server) trackTokenConn(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := principalFrom(r.Context())
		if p.TokenID == "" {
			next.ServeHTTP(w, r)
			return
		}
		if idle := s.wsTokens.add(p.TokenID); idle != nil {
			go s.watchTokens(idle)
		}
		defer s.wsTokens.remove(p.TokenID)
		next.ServeHTTP(w, r)
	})
}

// has reports whether token id has open connections.
func (c *tokenConns) has(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[id] > 0
}

// closeTokenConns closes, with code 1008, every WebSocket connection of
// this server that was opened with token id. Without such a connection it
// returns at once, so a server whose hub never started does not block.
func (s *Server) closeTokenConns(id string) {
	if !s.wsTokens.has(id) {
		return
	}
	s.hub.CloseWhere(func(meta any) bool {
		p, ok := meta.(auth.Principal)
		return ok && p.TokenID == id
	})
}

// watchTokens checks the tracked tokens every TokenRecheckInterval until
// idle is closed, and closes the connections of those revoked meanwhile,
// by this server or by another one sharing the database.
func (s *Server) watchTokens(idle chan struct{}) {
	tick := time.NewTicker(TokenRecheckInterval)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-idle:
			return
		case <-tick.C:
		}
		err := s.recheckTokens()
		switch {
		case err != nil && !failing:
			s.log.Warn("recheck of WebSocket tokens failed; retrying", "error", err)
		case err == nil && failing:
			s.log.Info("recheck of WebSocket tokens works again")
		}
		failing = err != nil
	}
}

// recheckTokens closes the connections of every tracked token that is
// revoked or gone. A token that cannot be read keeps its connections.
func (s *Server) recheckTokens() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()

	ids := s.wsTokens.ids()
	revoked, err := s.revokedTokens(ctx, ids)
	for _, id := range revoked {
		s.log.Info("closing WebSocket connections of a revoked token", "token_id", id)
		s.closeTokenConns(id)
	}
	return err
}

// revokedTokens returns those of ids that are revoked or no longer stored.
func (s *Server) revokedTokens(ctx context.Context, ids []string) ([]string, error) {
	var revoked []string
	if len(ids) > recheckBatch {
		all, err := s.db.Tokens(ctx)
		if err != nil {
			return nil, err
		}
		active := make(map[string]bool, len(all))
		for _, t := range all {
			active[t.ID] = !t.Revoked()
		}
		for _, id := range ids {
			if !active[id] {
				revoked = append(revoked, id)
			}
		}
		return revoked, nil
	}

	var errs []error
	for _, id := range ids {
		t, err := s.db.Token(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			revoked = append(revoked, id)
		case err != nil:
			errs = append(errs, err)
		case t.Revoked():
			revoked = append(revoked, id)
		}
	}
	return revoked, errors.Join(errs...)
}
