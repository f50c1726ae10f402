package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"cliq/auth"
	"cliq/logging"
)

// Verifier checks a bearer token. auth.Verifier is the implementation used
// by cliq server start: the session token plus the database tokens.
type Verifier interface {
	Verify(ctx context.Context, token string) (auth.Principal, error)
}

// principalKey is the context key of the auth.Principal of a request.
type principalKey struct{}

// principalFrom returns the principal that authenticated the request.
func principalFrom(ctx context.Context) (auth.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(auth.Principal)
	return p, ok
}

// apiHandler is an endpoint body: it writes a success response itself and
// returns an error for writeError to send.
type apiHandler func(w http.ResponseWriter, r *http.Request) error

// public turns an apiHandler into an http.Handler that needs no token.
func (s *Server) public(h apiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// protected turns an apiHandler into an http.Handler that first checks the
// bearer token in the Authorization header.
func (s *Server) protected(h apiHandler) http.Handler {
	return s.requireToken(s.public(h), false)
}

// requireToken wraps next with the token check. With allowQuery, a token=
// query parameter is accepted too, because browsers cannot set headers on a
// WebSocket handshake.
func (s *Server) requireToken(next http.Handler, allowQuery bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, err := requestToken(r, allowQuery)
		if err != nil {
			s.writeError(w, r, &Error{Code: CodeUnauthorized, Message: err.Error()})
			return
		}
		principal, err := s.verifier.Verify(r.Context(), token)
		if err != nil {
			s.writeError(w, r, verifyError(err))
			return
		}
		ctx := context.WithValue(r.Context(), principalKey{}, principal)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// errMissingToken is returned for a request with no token at all.
var errMissingToken = errors.New("missing Authorization header; send 'Authorization: Bearer' followed by a token (the session token is in server.json)")

// requestToken returns the token of r: the Authorization header, else, with
// allowQuery, the token query parameter.
func requestToken(r *http.Request, allowQuery bool) (string, error) {
	if header := r.Header.Get("Authorization"); header != "" {
		token, ok := auth.ParseBearer(header)
		if !ok {
			return "", errors.New("invalid Authorization header; use 'Authorization: Bearer <token>'")
		}
		return token, nil
	}
	if allowQuery {
		if token := r.URL.Query().Get("token"); token != "" {
			return token, nil
		}
	}
	return "", errMissingToken
}

// verifyError maps a Verifier error to the response: 401 for a token that
// is not valid, 503 when the check itself could not be made.
func verifyError(err error) *Error {
	if errors.Is(err, auth.ErrInvalidToken) {
		return &Error{Code: CodeUnauthorized, Message: "invalid or revoked token"}
	}
	return &Error{Code: CodeUnavailable, Message: "token check failed; try again", Err: err}
}

// cors replies to preflight requests and adds the CORS headers for the
// configured origins. A preflight needs no token.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		allowed := origin != "" && s.originAllowed(origin)
		if allowed {
			s.setAllowOrigin(w, origin)
		}
		if r.Method != http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		methods := s.routes.methods(r.URL.Path)
		if len(methods) == 0 {
			s.writeError(w, r, errorf(CodeNotFound, "no endpoint at %s", r.URL.Path))
			return
		}
		w.Header().Set("Allow", strings.Join(append(methods, http.MethodOptions), ", "))
		if allowed {
			w.Header().Set("Access-Control-Allow-Methods", "POST, GET, OPTIONS")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			w.Header().Set("Access-Control-Max-Age", "600")
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// originAllowed reports whether origin is in the configured list, or the
// list contains "*".
func (s *Server) originAllowed(origin string) bool {
	return slices.Contains(s.corsOrigins, "*") || slices.Contains(s.corsOrigins, origin)
}

// setAllowOrigin sets Access-Control-Allow-Origin for an allowed origin:
// "*" when every origin is allowed, else the origin itself with Vary.
func (s *Server) setAllowOrigin(w http.ResponseWriter, origin string) {
	if slices.Contains(s.corsOrigins, "*") {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Add("Vary", "Origin")
}

// checkWebSocketOrigin accepts a WebSocket handshake without an Origin
// header (CLI and Node clients), with an allowed one, or with the server's
// own origin. x/net/websocket clients always send an Origin, and cliq's
// own client sends the server's URL.
func (s *Server) checkWebSocketOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || s.originAllowed(origin) {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// logRequests logs one trace line per request, recovers from a panic in a
// handler with a 500, and never logs a token.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
				if rec.status == 0 {
					s.writeError(rec, r, internalError("internal error", nil))
				}
			}
			if s.log.Enabled(r.Context(), logging.LevelTrace) {
				s.log.Log(r.Context(), logging.LevelTrace, "request", "method", r.Method, "url", redactURL(r.URL),
					"status", rec.statusOr200(), "duration_ms", time.Since(start).Milliseconds(),
					"remote", r.RemoteAddr)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// redactURL returns the path and query of u with the value of every token
// parameter replaced.
func redactURL(u *url.URL) string {
	if u.RawQuery == "" {
		return u.Path
	}
	q := u.Query()
	for key := range q {
		if strings.EqualFold(key, "token") {
			q[key] = []string{"REDACTED"}
		}
	}
	return u.Path + "?" + q.Encode()
}

// statusRecorder remembers the status written through it. It passes Hijack
// through, because the WebSocket upgrade needs it.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Hijack hands the connection over, as for the WebSocket upgrade, which is
// logged as status 101.
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("response writer does not support hijacking")
	}
	r.status = http.StatusSwitchingProtocols
	return h.Hijack()
}

// Flush sends buffered data to the client.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) statusOr200() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}
