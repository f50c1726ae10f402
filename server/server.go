// Package server is cliq's HTTP and WebSocket server. It contains the route
// table and handlers of the JSON API, the middleware (auth, CORS, logging)
// and the instance monitor that bridges orchestrator events into the hub.
// It also writes server.json, which local tools read to find the server.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"cliq/events"
	"cliq/logging"
	"cliq/store"
)

// Defaults for the zero fields of Config.
const (
	DefaultHost         = "127.0.0.1"
	DefaultPort         = 4100
	DefaultPollInterval = 300 * time.Millisecond
	DefaultCancelWait   = 15 * time.Second
)

// Config configures a Server.
type Config struct {
	// Home is CLIQ_HOME. When set, Start writes server.json there and
	// Shutdown removes it.
	Home string
	// Host is the address to listen on; empty means DefaultHost.
	Host string
	// Port is the TCP port; 0 picks a free one (see Server.Port).
	Port int
	// DB is the store with the instance registry and the run history.
	DB *store.DB
	// Verifier checks the bearer token of every protected request.
	Verifier Verifier
	// SessionToken is written to server.json for local tools. The
	// Verifier must accept it.
	SessionToken string
	// Logger receives the server's log lines; nil means slog.Default().
	Logger *slog.Logger
	// Version is reported in server.json.
	Version string
	// Executable is the cliq binary started for each job; empty means
	// os.Executable().
	Executable string
	// CORSOrigins lists the origins allowed to call the API from a
	// browser; nil means ["*"].
	CORSOrigins []string
	// PollInterval is how often the monitor looks for orchestrators that
	// it did not start itself; zero means DefaultPollInterval.
	PollInterval time.Duration
	// CancelWait bounds how long a create with force waits for the active
	// run to stop; zero means DefaultCancelWait.
	CancelWait time.Duration
	// Hub configures the event hub; Logger is filled in from Logger.
	Hub events.HubOptions
	// Logs, when set, takes the new global settings after
	// /settings/update/ writes them, so that log levels change without a
	// restart, and learns the secrets written there.
	Logs *logging.Logs
	// IntegrationTimeout bounds one /integrations/test/ request; zero
	// means integrations.DefaultTimeout (10 s).
	IntegrationTimeout time.Duration
}

// Server serves the API and the event stream. Create it with New, then
// call Start and, at the end, Shutdown.
type Server struct {
	cfg         Config
	log         *slog.Logger
	db          *store.DB
	verifier    Verifier
	corsOrigins []string
	executable  string

	hub       *events.Hub
	mux       *http.ServeMux
	routes    routeTable
	handler   http.Handler
	monitor   *monitor
	jobs      *jobTable
	instances *instanceCache
	states    *stateCache
	// wsTokens counts the WebSocket connections of each database token.
	wsTokens tokenConns

	httpServer *http.Server
	listener   net.Listener
	startedAt  time.Time

	// stop ends the hub and the monitor; wg waits for their goroutines.
	stop context.CancelFunc
	wg   sync.WaitGroup

	shutdownOnce sync.Once
	shutdownErr  error
}

// New returns a server for cfg. It checks the configuration but opens no
// socket; Start does.
func New(cfg Config) (*Server, error) {
	if cfg.DB == nil {
		return nil, errors.New("server config: DB is required")
	}
	if cfg.Verifier == nil {
		return nil, errors.New("server config: Verifier is required")
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("server config: port %d is out of range (use 0 to 65535)", cfg.Port)
	}
	if cfg.Host == "" {
		cfg.Host = DefaultHost
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CORSOrigins == nil {
		cfg.CORSOrigins = []string{"*"}
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.CancelWait <= 0 {
		cfg.CancelWait = DefaultCancelWait
	}
	exe := cfg.Executable
	if exe == "" {
		path, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("server config: find the cliq executable: %w", err)
		}
		exe = path
	}

	log := cfg.Logger.With("component", "server")
	hubOpts := cfg.Hub
	hubOpts.Logger = cfg.Logger
	s := &Server{
		cfg:         cfg,
		log:         log,
		db:          cfg.DB,
		verifier:    cfg.Verifier,
		corsOrigins: cfg.CORSOrigins,
		executable:  exe,
		hub:         events.NewHub(hubOpts),
		mux:         http.NewServeMux(),
		routes:      routeTable{},
		jobs:        newJobTable(),
		instances:   newInstanceCache(),
		states:      newStateCache(),
	}
	s.monitor = newMonitor(s)
	s.registerRoutes()
	s.handler = s.logRequests(s.cors(s.exactPaths(s.mux)))
	return s, nil
}

// Handler returns the server's HTTP handler: every route with its
// middleware. Start serves it; tests may call it directly.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on the configured address, starts the hub and the instance
// monitor, serves requests in the background and, when Config.Home is
// set, writes server.json. It returns once the server accepts connections.
func (s *Server) Start(ctx context.Context) error {
	addr := net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	s.listener = ln
	s.startedAt = time.Now().UTC()

	runCtx, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.hub.Run(runCtx)
	}()
	if err := s.monitor.start(ctx, runCtx); err != nil {
		s.abortStart()
		return err
	}

	s.httpServer = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.httpServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve failed", "error", err)
		}
	}()

	if s.cfg.Home != "" {
		if err := writeInfo(s.cfg.Home, s.Info()); err != nil {
			s.abortStart()
			return err
		}
	}
	s.log.Info("server started", "url", s.URL(), "pid", os.Getpid(), "version", s.cfg.Version)
	return nil
}

// abortStart undoes a Start that failed halfway.
func (s *Server) abortStart() {
	if s.httpServer != nil {
		s.httpServer.Close()
	}
	s.listener.Close()
	s.hub.Stop()
	s.stop()
	s.wg.Wait()
}

// Port returns the port the server listens on, which differs from
// Config.Port when that was 0. It is 0 before Start.
func (s *Server) Port() int {
	if s.listener == nil {
		return 0
	}
	return s.listener.Addr().(*net.TCPAddr).Port
}

// URL returns the base URL for clients, e.g. http://127.0.0.1:4100. A
// server listening on every interface is reached through 127.0.0.1.
func (s *Server) URL() string {
	host := s.cfg.Host
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(s.Port()))
}

// Info returns what server.json records about this server.
func (s *Server) Info() Info {
	return Info{
		PID:       os.Getpid(),
		Port:      s.Port(),
		URL:       s.URL(),
		Token:     s.cfg.SessionToken,
		StartedAt: s.startedAt,
		Version:   s.cfg.Version,
	}
}

// Shutdown stops accepting connections, closes every WebSocket client with
// code 1001, stops the monitor and removes server.json. Running pipelines
// are separate processes and keep running. It waits for in-flight requests
// until ctx is done. Calling it again returns the first result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() { s.shutdownErr = s.shutdown(ctx) })
	return s.shutdownErr
}

func (s *Server) shutdown(ctx context.Context) error {
	if s.httpServer == nil {
		return errors.New("shutdown: server was not started")
	}
	var errs []error
	// Shutdown closes the listener at once and then waits for requests;
	// hijacked WebSocket connections are the hub's to close.
	httpDone := make(chan error, 1)
	go func() { httpDone <- s.httpServer.Shutdown(ctx) }()
	s.hub.Stop()
	if err := <-httpDone; err != nil {
		errs = append(errs, fmt.Errorf("shutdown http server: %w", err))
		s.httpServer.Close()
	}
	s.stop()
	s.wg.Wait()

	if s.cfg.Home != "" {
		if err := removeInfo(s.cfg.Home, os.Getpid()); err != nil {
			errs = append(errs, err)
		}
	}
	s.log.Info("server stopped", "uptime", time.Since(s.startedAt).Round(time.Millisecond).String())
	return errors.Join(errs...)
}
