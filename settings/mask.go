package settings

import (
	"net/url"
	"strings"
)

// MaskPrefix starts every masked value.
const MaskPrefix = "****"

// secretSuffixes are the key endings that mark a secret, compared in lower
// case with '-' read as '_'. "token_id" or "max_tokens" do not match.
var secretSuffixes = []string{"token", "api_key", "apikey", "password", "secret", "webhook_url", "authorization"}

// IsSecretKey reports whether a settings key (the last segment of a path)
// holds a secret: api_key, token, api_token, password, client_secret,
// webhook_url, an Authorization header, and keys ending in those.
func IsSecretKey(key string) bool {
	k := strings.ReplaceAll(strings.ToLower(key), "-", "_")
	for _, suffix := range secretSuffixes {
		if strings.HasSuffix(k, suffix) {
			return true
		}
	}
	return false
}

// Mask returns a deep copy of m with every secret masked: values under
// secret keys (see IsSecretKey) become MaskSecret of the value, and the
// password in database.url is replaced. m is not modified.
func Mask(m Map) Map {
	out := maskValue("", m).(Map)
	if u, ok := Lookup(out, "database.url"); ok {
		if s, ok := u.(string); ok {
			out["database"].(Map)["url"] = MaskURLPassword(s)
		}
	}
	return out
}

func maskValue(key string, v any) any {
	switch x := v.(type) {
	case Map:
		out := make(Map, len(x))
		for k, e := range x {
			out[k] = maskValue(k, e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = maskValue(key, e)
		}
		return out
	}
	if IsSecretKey(key) {
		return MaskSecret(v)
	}
	return v
}

// MaskSecret returns the masked form of a secret value: "****" followed by
// the last four characters of a string of 12 or more characters, else
// "****" alone, so that short secrets show nothing. An empty string stays
// empty, to show that the secret is unset.
func MaskSecret(v any) any {
	s, ok := v.(string)
	if !ok {
		return MaskPrefix
	}
	if s == "" {
		return ""
	}
	if len(s) < 12 {
		return MaskPrefix
	}
	return MaskPrefix + s[len(s)-4:]
}

// MaskURLPassword returns u with the password of its userinfo and of a
// password query parameter replaced by "****". A string that does not
// parse as a URL with a host loses everything before its last '@'.
func MaskURLPassword(u string) string {
	parsed, err := url.Parse(u)
	if err != nil || parsed.Host == "" {
		if at := strings.LastIndexByte(u, '@'); at >= 0 {
			return MaskPrefix + u[at:]
		}
		return u
	}
	if _, has := parsed.User.Password(); has {
		parsed.User = url.UserPassword(parsed.User.Username(), MaskPrefix)
	}
	if q := parsed.Query(); q.Has("password") {
		q.Set("password", MaskPrefix)
		parsed.RawQuery = q.Encode()
	}
	return strings.Replace(parsed.String(), url.QueryEscape(MaskPrefix), MaskPrefix, -1)
}

// isMasked reports whether s looks like the output of MaskSecret or
// MaskURLPassword, so that a masked value read from the API is not written
// back as if it were the secret.
func isMasked(s string) bool {
	return strings.HasPrefix(s, MaskPrefix) || strings.Contains(s, ":"+MaskPrefix+"@") ||
		strings.Contains(s, "password="+MaskPrefix)
}
