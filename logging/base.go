package logging

import "log/slog"

// Base returns a logger at logging.server_level without a component
// attribute, for code that adds its own: server.New derives the server,
// hub and monitor loggers from it.
func (l *Logs) Base() *slog.Logger {
	return slog.New(l.server)
}
