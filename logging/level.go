// Package logging builds the server's structured logs: slog JSON lines with
// a trace level below debug, secrets redacted from every line, written to
// stderr and to a size-rotated file in CLIQ_HOME/logs.
package logging

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// LevelTrace is below slog.LevelDebug: every HTTP request, WebSocket message
// and poll tick.
const LevelTrace = slog.Level(-8)

// levelNames maps the level names of the settings to slog levels.
var levelNames = map[string]slog.Level{
	"error": slog.LevelError,
	"warn":  slog.LevelWarn,
	"info":  slog.LevelInfo,
	"debug": slog.LevelDebug,
	"trace": LevelTrace,
}

// ParseLevel returns the level called s: error, warn, info, debug or trace,
// in any case. It returns an error naming s and the accepted names
// otherwise.
func ParseLevel(s string) (slog.Level, error) {
	if l, ok := levelNames[strings.ToLower(strings.TrimSpace(s))]; ok {
		return l, nil
	}
	return 0, fmt.Errorf("invalid log level %q: use error, warn, info, debug or trace", s)
}

// LevelName returns the lowercase name of l as written in log lines:
// "error", "warn", "info", "debug" or "trace". A level between two names
// gets the name of the next lower one ("info" for slog.LevelInfo+1).
func LevelName(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "error"
	case l >= slog.LevelWarn:
		return "warn"
	case l >= slog.LevelInfo:
		return "info"
	case l >= slog.LevelDebug:
		return "debug"
	}
	return "trace"
}

// Trace logs msg at LevelTrace.
func Trace(ctx context.Context, logger *slog.Logger, msg string, args ...any) {
	logger.Log(ctx, LevelTrace, msg, args...)
}
