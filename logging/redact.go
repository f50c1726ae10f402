package logging

import (
	"io"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"cliq/settings"
)

// Redacted replaces a secret in a log line.
const Redacted = "[REDACTED]"

// secretPattern finds secrets of one shape, whatever attribute or message
// carries them. The regexp keeps its first group and replaces the rest.
// Every match contains one of the lowercase markers. Redact checks them
// first, because most lines contain none and a regexp scan costs far more.
type secretPattern struct {
	re      *regexp.Regexp
	markers []string
	suffix  string
}

var secretPatterns = []secretPattern{
	{ // Authorization header values.
		re:      regexp.MustCompile(`(?i)((?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]+`),
		markers: []string{"bearer", "basic"},
	},
	{ // cliq database tokens (cliq_sk_) and session tokens (cliq_ss_).
		re:      regexp.MustCompile(`(cliq_s[a-z]_)[A-Za-z0-9]+`),
		markers: []string{"cliq_s"},
	},
	{ // token=, access_token=, api_key=, password=, secret= in query
		// strings and key=value text.
		re:      regexp.MustCompile(`(?i)((?:^|[^A-Za-z0-9_])(?:[a-z_]*token|api_key|apikey|password|secret)=)[^&\s"'\\]+`),
		markers: []string{"token=", "key=", "password=", "secret="},
	},
	{ // The password of a PostgreSQL URL.
		re:      regexp.MustCompile(`(postgres(?:ql)?://[^:/@\s"]*:)[^@\s"]+@`),
		markers: []string{"postgres"},
		suffix:  "@",
	},
}

// Redact returns s with every secret that has a known shape replaced:
// cliq_sk_ and cliq_ss_ tokens, token=... and similar query values, Bearer
// and Basic credentials, and PostgreSQL URL passwords.
func Redact(s string) string {
	lower := strings.ToLower(s)
	for _, p := range secretPatterns {
		if !containsAny(lower, p.markers) {
			continue
		}
		s = p.re.ReplaceAllString(s, "${1}"+Redacted+p.suffix)
		lower = strings.ToLower(s)
	}
	return s
}

func containsAny(s string, markers []string) bool {
	for _, m := range markers {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// redactWriter applies Redact, and the replacement of known secret values,
// to every line before it reaches w. slog handlers write one whole record
// per Write call, so a secret is never split across calls.
type redactWriter struct {
	w       io.Writer
	mu      sync.RWMutex // guards secrets
	secrets []string
	// writeMu serializes writes: the server and core handlers share one
	// writer, and each slog handler locks only its own writes.
	writeMu sync.Mutex
}

// setSecrets replaces the literal secrets to remove. Values shorter than
// four characters are ignored: removing them would garble ordinary text.
func (r *redactWriter) setSecrets(values []string) {
	var keep []string
	for _, v := range values {
		if len(v) >= 4 {
			keep = append(keep, v)
		}
	}
	r.mu.Lock()
	r.secrets = keep
	r.mu.Unlock()
}

// Write writes the redacted p and reports len(p) on success, as io.Writer
// requires, even when redaction changed the length.
func (r *redactWriter) Write(p []byte) (int, error) {
	line := Redact(string(p))
	r.mu.RLock()
	for _, s := range r.secrets {
		line = strings.ReplaceAll(line, s, Redacted)
	}
	r.mu.RUnlock()
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	if _, err := io.WriteString(r.w, line); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Secrets returns the secret values stored in m: every string under a
// secret key (see settings.IsSecretKey) and the password of database.url.
func Secrets(m settings.Map) []string {
	var out []string
	collectSecrets("", m, &out)
	if u := settings.DatabaseURL(m); u != "" {
		out = append(out, urlPasswords(u)...)
	}
	return out
}

func collectSecrets(key string, v any, out *[]string) {
	switch x := v.(type) {
	case settings.Map:
		for k, e := range x {
			collectSecrets(k, e, out)
		}
	case []any:
		for _, e := range x {
			collectSecrets(key, e, out)
		}
	case string:
		if settings.IsSecretKey(key) && x != "" {
			*out = append(*out, x)
		}
	}
}

// urlPasswords returns the passwords in a URL's userinfo and password
// query parameter, both decoded and as written, because either form may
// reach a log line.
func urlPasswords(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	var out []string
	if p, ok := u.User.Password(); ok && p != "" {
		_, escaped, _ := strings.Cut(u.User.String(), ":")
		out = append(out, p, escaped)
	}
	if p := u.Query().Get("password"); p != "" {
		out = append(out, p, url.QueryEscape(p))
	}
	return out
}
