package logging

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"

	"cliq/settings"
)

// Component names used in the "component" attribute. Components in
// coreComponents log at logging.core_level, the others at
// logging.server_level.
const (
	ComponentServer   = "server"
	ComponentHub      = "hub"
	ComponentMonitor  = "monitor"
	ComponentStore    = "store"
	ComponentAuth     = "auth"
	ComponentPipeline = "pipeline"
)

var coreComponents = map[string]bool{
	ComponentPipeline: true, "orchestrator": true, "agent": true, "gate": true, "engine": true,
}

// Path returns the path of the server log in home: logs/server.log.
func Path(home string) string { return filepath.Join(home, "logs", "server.log") }

// New returns a logger that writes JSON lines to w at level and above. Each
// line has time, level (lowercase: error, warn, info, debug or trace), msg
// and the attributes. Secrets are removed: the value of any attribute whose
// key names a secret (token, authorization, api_key, password, secret,
// webhook_url and keys ending in those), settings maps passed as values
// (masked), and anything in the line that Redact recognizes.
func New(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(newHandler(&redactWriter{w: w}, level))
}

func newHandler(w io.Writer, level slog.Leveler) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: replaceAttr})
}

// replaceAttr names the levels and removes secrets by attribute key.
func replaceAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.LevelKey {
		if l, ok := a.Value.Any().(slog.Level); ok {
			return slog.String(slog.LevelKey, LevelName(l))
		}
		return a
	}
	if settings.IsSecretKey(a.Key) && a.Value.Kind() != slog.KindGroup {
		return slog.String(a.Key, Redacted)
	}
	if a.Value.Kind() == slog.KindAny {
		switch v := a.Value.Any().(type) {
		case settings.Map:
			return slog.Any(a.Key, settings.Mask(v))
		case error:
			return slog.String(a.Key, v.Error())
		}
	}
	return a
}

// Logs holds the loggers of a server process: JSON lines to stderr and to
// a rotating CLIQ_HOME/logs/server.log, with the server and core levels
// and the secret values taken from the settings.
type Logs struct {
	serverLevel slog.LevelVar
	coreLevel   slog.LevelVar
	file        *RotatingFile
	out         *redactWriter
	server      slog.Handler
	core        slog.Handler

	mu           sync.Mutex
	fromSettings []string
	extra        []string
}

// Open creates the log directory and file in home and returns loggers
// configured by s: logging.server_level, logging.core_level,
// logging.max_size_mb and logging.max_files. stderr may be nil to log to
// the file only.
func Open(home string, s settings.Map, stderr io.Writer) (*Logs, error) {
	maxBytes, maxFiles := settings.LogRotation(s)
	file, err := NewRotatingFile(Path(home), maxBytes, maxFiles)
	if err != nil {
		return nil, err
	}
	var w io.Writer = file
	if stderr != nil {
		w = io.MultiWriter(stderr, file)
	}
	l := &Logs{file: file, out: &redactWriter{w: w}}
	l.server = newHandler(l.out, &l.serverLevel)
	l.core = newHandler(l.out, &l.coreLevel)
	if err := l.Apply(s); err != nil {
		file.Close()
		return nil, err
	}
	return l, nil
}

// Apply takes new settings: the levels, the rotation limits and the secret
// values to keep out of the logs. Call it after the settings change.
func (l *Logs) Apply(s settings.Map) error {
	serverName, coreName := settings.LogLevelSettings(s)
	serverLevel, err := ParseLevel(serverName)
	if err != nil {
		return fmt.Errorf("logging.server_level: %w", err)
	}
	coreLevel, err := ParseLevel(coreName)
	if err != nil {
		return fmt.Errorf("logging.core_level: %w", err)
	}
	l.serverLevel.Set(serverLevel)
	l.coreLevel.Set(coreLevel)
	l.file.SetLimits(settings.LogRotation(s))

	l.mu.Lock()
	defer l.mu.Unlock()
	l.fromSettings = Secrets(s)
	l.out.setSecrets(append(append([]string(nil), l.fromSettings...), l.extra...))
	return nil
}

// AddSecrets keeps more literal values out of every later line, such as the
// session token generated at start, on top of those in the settings. They
// stay through later calls of Apply.
func (l *Logs) AddSecrets(values ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.extra = append(l.extra, values...)
	l.out.setSecrets(append(append([]string(nil), l.fromSettings...), l.extra...))
}

// Logger returns a logger with the component attribute set. Core
// components (pipeline, orchestrator, agent, gate, engine) log at
// logging.core_level, the others at logging.server_level.
func (l *Logs) Logger(component string) *slog.Logger {
	h := l.server
	if coreComponents[component] {
		h = l.core
	}
	return slog.New(h).With("component", component)
}

// Close closes the log file. Lines logged after Close still reach stderr,
// and the file write fails silently because slog drops handler errors.
func (l *Logs) Close() error {
	return l.file.Close()
}
