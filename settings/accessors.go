package settings

import "math"

// Defaults of the settings that the server and the engine read.
const (
	DefaultPort      = 4100
	DefaultHost      = "127.0.0.1"
	DefaultLogLevel  = "info"
	DefaultLogSizeMB = 10
	DefaultLogFiles  = 5
	DefaultMaxDepth  = 3
	DefaultIDPrefix  = "cliq"
)

// ServerPort returns server.port, or DefaultPort when it is unset or not a
// valid port.
func ServerPort(m Map) int {
	return intAt(m, "server.port", 0, 65535, DefaultPort)
}

// ServerHost returns server.host, or DefaultHost.
func ServerHost(m Map) string {
	return String(m, "server.host", DefaultHost)
}

// CORSOrigins returns server.cors_origins, or ["*"] (every origin) when it
// is unset or not an array of strings.
func CORSOrigins(m Map) []string {
	origins, found, err := Strings(m, "server.cors_origins")
	if !found || err != nil {
		return []string{"*"}
	}
	return origins
}

// LogLevelSettings returns logging.server_level and logging.core_level, each
// DefaultLogLevel when unset or not a known level.
func LogLevelSettings(m Map) (server, core string) {
	return levelAt(m, "logging.server_level"), levelAt(m, "logging.core_level")
}

// LogRotation returns the size in bytes at which the server log rotates
// (logging.max_size_mb) and how many rotated files are kept
// (logging.max_files).
func LogRotation(m Map) (maxBytes int64, maxFiles int) {
	mb := intAt(m, "logging.max_size_mb", 1, 1024, DefaultLogSizeMB)
	return int64(mb) << 20, intAt(m, "logging.max_files", 1, 100, DefaultLogFiles)
}

// DatabaseURL returns database.url, or "" when the SQLite file in CLIQ_HOME
// is to be used.
func DatabaseURL(m Map) string {
	return String(m, "database.url", "")
}

// DefaultAgent returns default_agent, or "" when unset.
func DefaultAgent(m Map) string {
	return String(m, "default_agent", "")
}

// IDPrefix returns id_prefix, or DefaultIDPrefix.
func IDPrefix(m Map) string {
	return String(m, "id_prefix", DefaultIDPrefix)
}

// Headless reports the headless setting (false when unset).
func Headless(m Map) bool {
	v, _ := Lookup(m, "headless")
	b, _ := v.(bool)
	return b
}

// TeamsMaxDepth returns teams.max_depth, the deepest nesting of team
// phases, or DefaultMaxDepth.
func TeamsMaxDepth(m Map) int {
	return intAt(m, "teams.max_depth", 1, 10, DefaultMaxDepth)
}

func intAt(m Map, path string, lo, hi, def int) int {
	v, ok := Lookup(m, path)
	if !ok {
		return def
	}
	f, ok := toFloat(v)
	if !ok || f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
		return def
	}
	return int(f)
}

// toFloat converts the number types a Map can hold: float64 from JSON, and
// int or int64 from Go code.
func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	}
	return 0, false
}

func levelAt(m Map, path string) string {
	s := String(m, path, DefaultLogLevel)
	if !contains(LogLevels, s) {
		return DefaultLogLevel
	}
	return s
}
