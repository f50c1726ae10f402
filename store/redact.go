package store

import (
	"net/url"
	"strings"
)

// redactedPassword replaces a password in a redacted URL.
const redactedPassword = "xxxxx"

// RedactURL returns dsn with any password replaced by "xxxxx": the one in
// the userinfo and a password query parameter, which libpq-style URLs also
// accept. A dsn that is not a URL (a SQLite path) is returned unchanged. When
// a URL cannot be parsed, everything between "://" and the last "@" is
// replaced, so a malformed URL does not leak its password either.
func RedactURL(dsn string) string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			return scheme + "://" + redactedPassword + rest[at:]
		}
		return dsn
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), redactedPassword)
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", redactedPassword)
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// urlPassword returns the password a PostgreSQL URL carries, from the
// userinfo or the password query parameter.
func urlPassword(u *url.URL) string {
	if p, ok := u.User.Password(); ok && p != "" {
		return p
	}
	return u.Query().Get("password")
}
