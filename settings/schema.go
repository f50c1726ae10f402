package settings

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// ErrInvalid is wrapped by every error about a bad settings value, scope or
// key, so that callers can map it to a 400 response.
var ErrInvalid = errors.New("invalid settings")

// ValidationError reports one setting that breaks the schema. Path is the
// dotted key ("server.port"); a bad array item is named in Message.
type ValidationError struct {
	Path    string
	Message string
}

// Error returns "setting PATH: MESSAGE".
func (e *ValidationError) Error() string {
	return fmt.Sprintf("setting %s: %s", e.Path, e.Message)
}

// Unwrap returns ErrInvalid.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// kind is the JSON type a rule expects.
type kind int

const (
	kindAny kind = iota
	kindString
	kindBool
	kindInt
	kindStrings
	kindObject
)

// rule describes one key of the schema. An object rule lists its known
// fields, or gives one rule for the value of every key (valueRule), or is
// loose.
type rule struct {
	kind      kind
	min       int
	max       int
	enum      []string
	check     func(v any) string
	custom    func(path string, v any) error
	fields    map[string]*rule
	valueRule *rule
	loose     bool
}

var (
	idPrefixPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,40}$`)
	namePattern     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
)

// LogLevels lists the accepted values of logging.server_level and
// logging.core_level, most severe first.
var LogLevels = []string{"error", "warn", "info", "debug", "trace"}

// IntegrationTypes lists the accepted values of integrations.<name>.type.
var IntegrationTypes = []string{"http", "slack", "github", "jira"}

func str() *rule                   { return &rule{kind: kindString} }
func boolean() *rule               { return &rule{kind: kindBool} }
func integer(lo, hi int) *rule     { return &rule{kind: kindInt, min: lo, max: hi} }
func enum(values ...string) *rule  { return &rule{kind: kindString, enum: values} }
func loose() *rule                 { return &rule{kind: kindObject, loose: true} }
func obj(f map[string]*rule) *rule { return &rule{kind: kindObject, fields: f} }
func mapOf(value *rule) *rule      { return &rule{kind: kindObject, valueRule: value} }

// schema is the shape of a settings document. Sections that this version
// only stores (hub, builder, docker, kubernetes, hug, push, notifications,
// server.a2a) are loose objects: any content is accepted there.
var schema = obj(map[string]*rule{
	"id_prefix":               {kind: kindString, check: checkIDPrefix},
	"default_agent":           {kind: kindString, check: checkName},
	"headless":                boolean(),
	"strict_input_validation": boolean(),
	"agents":                  mapOf(agentRule),
	"server": obj(map[string]*rule{
		"port":         integer(0, 65535),
		"host":         {kind: kindString, check: checkHost},
		"cors_origins": {kind: kindStrings, check: checkOrigins},
		"a2a":          loose(),
	}),
	"logging": obj(map[string]*rule{
		"server_level": enum(LogLevels...),
		"core_level":   enum(LogLevels...),
		"max_size_mb":  integer(1, 1024),
		"max_files":    integer(1, 100),
	}),
	"database": obj(map[string]*rule{
		"url": {kind: kindString, check: checkDatabaseURL},
	}),
	"teams": obj(map[string]*rule{
		"max_depth": integer(1, 10),
	}),
	"integrations":  mapOf(&rule{kind: kindObject, custom: validateIntegration}),
	"notifications": loose(),
	"hub":           loose(),
	"builder":       loose(),
	"docker":        loose(),
	"kubernetes":    loose(),
	"hug":           loose(),
	"push":          loose(),
})

var agentRule = obj(map[string]*rule{
	"command": {kind: kindStrings, check: checkCommand},
	"api_key": str(),
	"model":   str(),
	"env":     mapOf(str()),
})

// Validate checks m against the schema of known keys: types, ranges and
// formats, and rejects unknown keys. It returns a *ValidationError (wrapping
// ErrInvalid) for the first problem in key order, naming its path. Error
// messages never contain the value of a secret.
func Validate(m Map) error {
	return validate(schema, "", m)
}

func validate(r *rule, path string, v any) error {
	if msg := checkKind(r, v, IsSecretKey(lastKey(path))); msg != "" {
		return &ValidationError{Path: path, Message: msg}
	}
	if r.check != nil {
		if msg := r.check(v); msg != "" {
			return &ValidationError{Path: path, Message: msg}
		}
	}
	if r.custom != nil {
		return r.custom(path, v)
	}
	obj, ok := v.(Map)
	if !ok || r.loose {
		return nil
	}
	for _, key := range sortedKeys(obj) {
		child := r.valueRule
		if r.fields != nil {
			child = r.fields[key]
		}
		if child == nil {
			return &ValidationError{Path: join(path, key), Message: unknownKeyMessage(r)}
		}
		if err := validate(child, join(path, key), obj[key]); err != nil {
			return err
		}
	}
	return nil
}

// checkKind returns what is wrong with the JSON type or range of v, or "".
// For secrets the message names the type only, never the value.
func checkKind(r *rule, v any, secret bool) string {
	got := describe(v, secret)
	switch r.kind {
	case kindString:
		s, ok := v.(string)
		if !ok {
			return "must be a string, got " + got
		}
		if len(r.enum) > 0 && !contains(r.enum, s) {
			return fmt.Sprintf("must be one of %s, got %s", strings.Join(r.enum, ", "), got)
		}
	case kindBool:
		if _, ok := v.(bool); !ok {
			return "must be true or false, got " + got
		}
	case kindInt:
		f, ok := toFloat(v)
		if !ok || f != math.Trunc(f) || f < float64(r.min) || f > float64(r.max) {
			return fmt.Sprintf("must be an integer from %d to %d, got %s", r.min, r.max, got)
		}
	case kindStrings:
		return checkStrings(v, got)
	case kindObject:
		if _, ok := v.(Map); !ok {
			return "must be an object, got " + got
		}
	}
	return ""
}

func checkStrings(v any, got string) string {
	arr, ok := v.([]any)
	if !ok {
		return "must be an array of strings, got " + got
	}
	for i, e := range arr {
		if _, ok := e.(string); !ok {
			return fmt.Sprintf("must be an array of strings, but item %d is %s", i, describe(e, false))
		}
	}
	return ""
}

// describe renders v for an error message: the value itself for scalars,
// the JSON type for the rest and for secrets.
func describe(v any, secret bool) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case Map:
		return "an object"
	case []any:
		return "an array"
	case string:
		if secret {
			return "a string"
		}
		return fmt.Sprintf("%q", x)
	default:
		if secret {
			return fmt.Sprintf("a %T", v)
		}
		return fmt.Sprintf("%v", x)
	}
}

func unknownKeyMessage(r *rule) string {
	known := make([]string, 0, len(r.fields))
	for k := range r.fields {
		known = append(known, k)
	}
	sort.Strings(known)
	return "unknown key; known keys here: " + strings.Join(known, ", ")
}

func checkIDPrefix(v any) string {
	if !idPrefixPattern.MatchString(v.(string)) {
		return fmt.Sprintf("%q is invalid: use 1 to 41 lowercase letters, digits, '-' and '_', starting with a letter or digit", v)
	}
	return ""
}

func checkName(v any) string {
	if !namePattern.MatchString(v.(string)) {
		return fmt.Sprintf("%q is not an agent name: use letters, digits, '.', '-' and '_'", v)
	}
	return ""
}

func checkHost(v any) string {
	s := v.(string)
	if s == "" || strings.ContainsAny(s, " /") {
		return fmt.Sprintf("%q is not a host name or IP address (e.g. 127.0.0.1 or 0.0.0.0)", s)
	}
	return ""
}

func checkCommand(v any) string {
	arr := v.([]any)
	if len(arr) == 0 || strings.TrimSpace(arr[0].(string)) == "" {
		return `must name the program and its arguments, e.g. ["claude", "-p"]`
	}
	return ""
}

// checkOrigins accepts "*" or origins of the form scheme://host[:port].
func checkOrigins(v any) string {
	for i, e := range v.([]any) {
		s := e.(string)
		if s == "*" {
			continue
		}
		if !isOrigin(s) {
			return fmt.Sprintf("item %d %q is not an origin: use \"*\" or scheme://host[:port] with no path, "+
				"e.g. https://dashboard.example.com", i, s)
		}
	}
	return ""
}

func isOrigin(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil {
		return false
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return false
	}
	return u.Path == "" && u.RawQuery == "" && u.Fragment == "" && !strings.HasSuffix(s, "/")
}

func checkDatabaseURL(v any) string {
	s := v.(string)
	if !strings.HasPrefix(s, "postgres://") && !strings.HasPrefix(s, "postgresql://") {
		return "must be a PostgreSQL URL starting with postgres:// or postgresql://; " +
			"remove the key to use the SQLite file in CLIQ_HOME"
	}
	if u, err := url.Parse(s); err != nil || u.Host == "" {
		return "is not a valid URL: use postgres://user:password@host:5432/dbname"
	}
	return ""
}

func lastKey(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func sortedKeys(m Map) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
