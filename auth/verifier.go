package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"cliq/store"
)

// Principal kinds.
const (
	KindSession  = "session"
	KindDatabase = "database"
)

// TouchInterval is the minimum time between two writes of one token's
// last_used_at.
const TouchInterval = time.Minute

// ErrInvalidToken means the token is malformed, unknown or revoked, which is
// a 401 for the server. Any other Verify error means the store failed (503).
var ErrInvalidToken = errors.New("invalid token")

// Principal is the caller a verified token stands for. TokenID and Label
// are empty for the session token.
type Principal struct {
	Kind    string
	TokenID string
	Label   string
}

// TokenStore is the part of the store the verifier needs; *store.DB has it.
type TokenStore interface {
	TokenByHash(ctx context.Context, hash string) (store.Token, error)
	TouchToken(ctx context.Context, id string, at time.Time) error
}

// Verifier checks bearer tokens. It holds no cache of valid database tokens:
// every call reads the token's row, so a revocation takes effect on the next
// request. It only remembers when it last wrote each token's last_used_at.
// A Verifier is safe for concurrent use.
type Verifier struct {
	// sessionHash is the SHA-256 of the session token; zero when there is
	// none. Comparing hashes keeps the comparison constant-time whatever the
	// length of the presented token.
	sessionHash [sha256.Size]byte
	hasSession  bool
	tokens      TokenStore
	now         func() time.Time
	logger      *slog.Logger

	mu sync.Mutex
	// touched maps a token id to the last_used_at this verifier last wrote
	// or read. A process writes each token's last_used_at at most once per
	// TouchInterval; several replicas can each write once.
	touched map[string]time.Time
}

// NewVerifier returns a Verifier that accepts session, when it is not empty,
// and the unrevoked database tokens in tokens, when that is not nil.
func NewVerifier(session string, tokens TokenStore) *Verifier {
	v := &Verifier{
		tokens:  tokens,
		now:     time.Now,
		logger:  slog.Default().With("component", "auth"),
		touched: map[string]time.Time{},
	}
	if session != "" {
		v.sessionHash = sha256.Sum256([]byte(session))
		v.hasSession = true
	}
	return v
}

// SetClock replaces the clock used for last_used_at. Call it before the
// first Verify; tests use it to move time forward.
func (v *Verifier) SetClock(now func() time.Time) {
	v.now = now
}

// SetLogger replaces the logger for failed last_used_at writes. Call it
// before the first Verify.
func (v *Verifier) SetLogger(logger *slog.Logger) {
	v.logger = logger
}

// Verify returns the principal for token. It returns ErrInvalidToken for a
// malformed, unknown or revoked token and a wrapped store error when the
// token could not be checked. No error includes the token.
func (v *Verifier) Verify(ctx context.Context, token string) (Principal, error) {
	switch {
	case strings.HasPrefix(token, SessionPrefix):
		return v.verifySession(token)
	case strings.HasPrefix(token, DatabasePrefix):
		return v.verifyDatabase(ctx, token)
	default:
		return Principal{}, ErrInvalidToken
	}
}

func (v *Verifier) verifySession(token string) (Principal, error) {
	sum := sha256.Sum256([]byte(token))
	if !v.hasSession || subtle.ConstantTimeCompare(sum[:], v.sessionHash[:]) != 1 {
		return Principal{}, ErrInvalidToken
	}
	return Principal{Kind: KindSession}, nil
}

func (v *Verifier) verifyDatabase(ctx context.Context, token string) (Principal, error) {
	if v.tokens == nil || !ValidDatabaseToken(token) {
		return Principal{}, ErrInvalidToken
	}
	hash := Hash(token)
	stored, err := v.tokens.TokenByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrInvalidToken
	}
	if err != nil {
		return Principal{}, fmt.Errorf("verify token: %w", err)
	}
	// The lookup matched on the hash already; comparing again in constant
	// time guards against a store that matches loosely.
	if subtle.ConstantTimeCompare([]byte(stored.Hash), []byte(hash)) != 1 || stored.Revoked() {
		return Principal{}, ErrInvalidToken
	}

	v.touch(ctx, stored)
	return Principal{Kind: KindDatabase, TokenID: stored.ID, Label: stored.Label}, nil
}

// touch records the use of t unless its last_used_at, as stored or as
// last written by this verifier, is less than TouchInterval old. A failed
// write is logged and does not fail the request.
func (v *Verifier) touch(ctx context.Context, t store.Token) {
	now := v.now()
	if !v.claimTouch(t, now) {
		return
	}
	if err := v.tokens.TouchToken(ctx, t.ID, now); err != nil {
		v.releaseTouch(t.ID, now)
		v.logger.Warn("record token use failed", "token_id", t.ID, "error", err)
	}
}

// claimTouch reports whether the caller should write last_used_at = now,
// and if so marks it written so that concurrent requests skip it.
func (v *Verifier) claimTouch(t store.Token, now time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()

	last := v.touched[t.ID]
	if t.LastUsedAt != nil && t.LastUsedAt.After(last) {
		// Another replica or an earlier process wrote it.
		last = *t.LastUsedAt
	}
	if !last.IsZero() && now.Sub(last) < TouchInterval {
		return false
	}
	v.touched[t.ID] = now
	return true
}

// releaseTouch removes the claim of a write that failed, so the next
// request retries it.
func (v *Verifier) releaseTouch(id string, claimed time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.touched[id].Equal(claimed) {
		delete(v.touched, id)
	}
}
