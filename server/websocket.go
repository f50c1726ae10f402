package server

import (
	"net/http"
	"strings"
)

// websocket returns the handler of GET / and GET /ws: the hub's WebSocket
// endpoint behind the token check. A browser cannot set headers on a
// handshake, so the token may also come as ?token=. The hub checks the
// Origin header against the CORS origins.
func (s *Server) websocket() http.Handler {
	meta := func(r *http.Request) any {
		p, _ := principalFrom(r.Context())
		return p
	}
	upgrade := s.requireToken(s.trackTokenConn(s.hub.HandlerWithMeta(s.checkWebSocketOrigin, meta)), true)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isWebSocketRequest(r) {
			s.writeError(w, r, errorf(CodeInvalidRequest,
				"GET %s is the WebSocket endpoint; connect with a WebSocket client to ws://HOST:PORT%s?token=TOKEN",
				r.URL.Path, r.URL.Path))
			return
		}
		upgrade.ServeHTTP(w, r)
	})
}

// isWebSocketRequest reports whether r requests a WebSocket upgrade.
func isWebSocketRequest(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		headerHasToken(r.Header.Get("Connection"), "upgrade")
}

// headerHasToken reports whether a comma-separated header value contains
// token, ignoring case.
func headerHasToken(value, token string) bool {
	for _, part := range strings.Split(value, ",") {
		if strings.EqualFold(strings.TrimSpace(part), token) {
			return true
		}
	}
	return false
}
