package server

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"cliq/auth"
	"cliq/store"
)

// MaxTokenLabel is the maximum length of a token label, in characters,
// after surrounding spaces are trimmed.
const MaxTokenLabel = 100

// registerTokenRoutes adds the /tokens/ endpoints.
func (s *Server) registerTokenRoutes() {
	s.handle("POST /tokens/create/", s.protected(s.createToken))
	s.handle("POST /tokens/create", s.protected(s.createToken))
	s.handle("POST /tokens/list/", s.protected(s.listTokens))
	s.handle("POST /tokens/list", s.protected(s.listTokens))
	s.handle("POST /tokens/revoke/", s.protected(s.revokeToken))
	s.handle("POST /tokens/revoke", s.protected(s.revokeToken))
}

// Token statuses in the API.
const (
	TokenActive  = "active"
	TokenRevoked = "revoked"
)

// tokenInfo is one token as /tokens/list/ and /tokens/revoke/ return it.
// The secret is never part of it.
type tokenInfo struct {
	ID         string     `json:"id"`
	Label      string     `json:"label"`
	Status     string     `json:"status"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

func newTokenInfo(t store.Token) tokenInfo {
	info := tokenInfo{
		ID: t.ID, Label: t.Label, Status: TokenActive,
		CreatedAt: t.CreatedAt.UTC(), LastUsedAt: utcPtr(t.LastUsedAt), RevokedAt: utcPtr(t.RevokedAt),
	}
	if t.Revoked() {
		info.Status = TokenRevoked
	}
	return info
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// createTokenRequest is the body of /tokens/create/.
type createTokenRequest struct {
	Label string `json:"label"`
}

// createTokenResponse is the body of a 201 from /tokens/create/: the only
// response that carries the token itself.
type createTokenResponse struct {
	ID        string    `json:"id"`
	Label     string    `json:"label"`
	Token     string    `json:"token"`
	CreatedAt time.Time `json:"created_at"`
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) error {
	var req createTokenRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	label, err := checkTokenLabel(req.Label)
	if err != nil {
		return err
	}

	plaintext, err := auth.NewDatabaseToken()
	if err != nil {
		return internalError("generate token failed", err)
	}
	id, err := auth.NewTokenID()
	if err != nil {
		return internalError("generate token id failed", err)
	}
	// The store keeps microseconds, so the response shows the stored time.
	now := time.Now().UTC().Truncate(time.Microsecond)
	t := store.Token{ID: id, Label: label, Hash: auth.Hash(plaintext), CreatedAt: now}
	if err := s.db.CreateToken(r.Context(), t); err != nil {
		return internalError("store token failed", err)
	}

	s.log.Info("token created", "token_id", id, "label", label, "by", principalName(r))
	writeJSON(w, http.StatusCreated, createTokenResponse{
		ID: id, Label: label, Token: plaintext, CreatedAt: now,
	})
	return nil
}

// checkTokenLabel trims label and checks that it is 1 to MaxTokenLabel
// characters of printable text.
func checkTokenLabel(label string) (string, error) {
	label = strings.TrimSpace(label)
	n := utf8.RuneCountInString(label)
	switch {
	case n == 0:
		return "", errorf(CodeInvalidRequest, "label is required: give the token a name such as \"ci-deploy\"")
	case n > MaxTokenLabel:
		return "", errorf(CodeInvalidRequest, "label is %d characters long; use at most %d", n, MaxTokenLabel)
	}
	for i, c := range label {
		if unicode.IsControl(c) {
			return "", errorf(CodeInvalidRequest,
				"label contains the control character %U at byte %d; use printable characters only", c, i)
		}
	}
	return label, nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) error {
	var req struct{}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	list, err := s.db.Tokens(r.Context())
	if err != nil {
		return internalError("list tokens failed", err)
	}
	out := make([]tokenInfo, len(list))
	for i, t := range list {
		out[i] = newTokenInfo(t)
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
	return nil
}

// revokeTokenRequest is the body of /tokens/revoke/.
type revokeTokenRequest struct {
	ID string `json:"id"`
}

// revokeToken revokes a token and closes this server's WebSocket
// connections opened with it. Revoking a revoked token is a harmless
// repeat that returns it unchanged.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	var req revokeTokenRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	id := strings.TrimSpace(req.ID)
	if err := checkTokenID(id); err != nil {
		return err
	}

	t, err := s.db.RevokeToken(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(CodeNotFound, "token %s not found; list the token ids with /tokens/list/", id)
	}
	if err != nil {
		return internalError("revoke token failed", err)
	}

	s.closeTokenConns(id)
	s.log.Info("token revoked", "token_id", id, "by", principalName(r))
	writeJSON(w, http.StatusOK, newTokenInfo(t))
	return nil
}

// checkTokenID rejects an id that cannot be a token id. A value that looks
// like a token itself is not repeated in the message, because it may be a
// secret pasted by mistake.
func checkTokenID(id string) error {
	switch {
	case id == "":
		return errorf(CodeInvalidRequest, "id is required: give the token id (tok_…) from /tokens/list/")
	case strings.HasPrefix(id, auth.DatabasePrefix) || strings.HasPrefix(id, auth.SessionPrefix):
		return errorf(CodeInvalidRequest,
			"id must be a token id (tok_…), not the token itself; find the id with /tokens/list/")
	case !strings.HasPrefix(id, auth.IDPrefix):
		return errorf(CodeInvalidRequest, "id %s is not a token id; token ids start with %q (see /tokens/list/)",
			quoteShort(id), auth.IDPrefix)
	}
	return nil
}

// quoteShort quotes s, cut to 40 bytes, for an error message.
func quoteShort(s string) string {
	const limit = 40
	if len(s) > limit {
		return fmt.Sprintf("%q…", s[:limit])
	}
	return fmt.Sprintf("%q", s)
}

// principalName names the caller of r for log lines: "session" or the
// token id, never the token.
func principalName(r *http.Request) string {
	p, ok := principalFrom(r.Context())
	switch {
	case !ok:
		return "unknown"
	case p.TokenID != "":
		return p.TokenID
	default:
		return p.Kind
	}
}
