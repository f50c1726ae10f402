package server

import (
	"net/http"
	"path"
	"slices"
	"strings"
)

// registerRoutes fills the route table. Every API path is listed with and
// without its trailing slash, one route a line.
func (s *Server) registerRoutes() {
	s.handle("POST /jobs/create/", s.protected(s.createJob))
	s.handle("POST /jobs/create", s.protected(s.createJob))
	s.handle("POST /jobs/get/", s.protected(s.getJob))
	s.handle("POST /jobs/get", s.protected(s.getJob))
	s.handle("POST /jobs/list/", s.protected(s.listJobs))
	s.handle("POST /jobs/list", s.protected(s.listJobs))
	s.handle("POST /jobs/phases/", s.protected(s.jobPhases))
	s.handle("POST /jobs/phases", s.protected(s.jobPhases))
	s.handle("POST /jobs/log/", s.protected(s.jobLog))
	s.handle("POST /jobs/log", s.protected(s.jobLog))
	s.handle("POST /jobs/cancel/", s.protected(s.cancelJob))
	s.handle("POST /jobs/cancel", s.protected(s.cancelJob))

	s.handle("POST /instances/list/", s.protected(s.listInstances))
	s.handle("POST /instances/list", s.protected(s.listInstances))
	s.handle("POST /instances/get/", s.protected(s.getInstance))
	s.handle("POST /instances/get", s.protected(s.getInstance))
	s.handle("POST /instances/remove/", s.protected(s.removeInstance))
	s.handle("POST /instances/remove", s.protected(s.removeInstance))

	s.handle("POST /health/", s.public(s.health))
	s.handle("POST /health", s.public(s.health))
	s.handle("GET /healthz", s.public(s.healthz))
	s.handle("GET /healthz/", s.public(s.healthz))
	s.handle("GET /readyz", s.public(s.readyz))
	s.handle("GET /readyz/", s.public(s.readyz))

	s.handle("GET /", s.websocket())
	s.handle("GET /ws", s.websocket())
	s.handle("GET /ws/", s.websocket())
	s.registerTokenRoutes()
	s.registerSettingsRoutes()
	s.registerTeamRoutes()

	// Every other request: 405 with Allow for a known path, else 404, both
	// as JSON. Without this catch-all, ServeMux would reply in plain text.
	s.mux.Handle("/", s.public(s.notFound))
}

// exactPaths responds to a path that ServeMux would clean and redirect,
// such as one with a double slash or a "." or ".." segment, with the JSON
// 404 of every other unknown path. No client then receives a bare redirect.
func (s *Server) exactPaths(next http.Handler) http.Handler {
	notFound := s.public(s.notFound)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isCleanPath(r.URL.Path) {
			notFound.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isCleanPath reports whether p is absolute and unchanged by path.Clean,
// a trailing slash aside.
func isCleanPath(p string) bool {
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return strings.HasPrefix(p, "/") && clean == p
}

// handle registers handler for the exact method and path of pattern and
// records the path, so that notFound can tell 404 from 405.
func (s *Server) handle(pattern string, handler http.Handler) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		panic("server: route pattern without a method: " + pattern)
	}
	s.routes.add(method, path)

	// "{$}" makes a pattern ending in a slash match that path only, not
	// the whole subtree below it.
	if strings.HasSuffix(path, "/") {
		pattern += "{$}"
	}
	s.mux.Handle(pattern, handler)
}

// routeTable records the methods registered for each exact path.
type routeTable map[string][]string

func (t routeTable) add(method, path string) {
	if !slices.Contains(t[path], method) {
		t[path] = append(t[path], method)
	}
}

// methods returns the methods registered for path, with HEAD added where
// GET is, as ServeMux serves HEAD through GET patterns.
func (t routeTable) methods(path string) []string {
	methods := slices.Clone(t[path])
	if slices.Contains(methods, http.MethodGet) && !slices.Contains(methods, http.MethodHead) {
		methods = append(methods, http.MethodHead)
	}
	return methods
}

// notFound returns the error for a request that no route matched.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) error {
	methods := s.routes.methods(r.URL.Path)
	if len(methods) == 0 {
		return errorf(CodeNotFound, "no endpoint at %s; API endpoints are POST, e.g. POST /jobs/list/", r.URL.Path)
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	return errorf(CodeMethodNotAllowed, "method %s is not allowed on %s; use %s",
		r.Method, r.URL.Path, strings.Join(methods, " or "))
}
