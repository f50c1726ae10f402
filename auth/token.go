// Package auth generates and checks cliq's API tokens.
//
// Two kinds of bearer token exist. The session token is generated when the
// server starts, kept in memory and in server.json, and lives until the
// server stops. Database tokens are created over the API or seeded from
// CLIQ_ADMIN_TOKEN, live until revoked, and are stored only as their SHA-256.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Token prefixes. The prefix identifies the kind of token, so the verifier
// never looks a session token up in the database.
const (
	DatabasePrefix = "cliq_sk_"
	SessionPrefix  = "cliq_ss_"
	IDPrefix       = "tok_"
)

// secretBytes is the number of random bytes in a token, written as 64
// lowercase hex characters after the prefix.
const secretBytes = 32

// idBytes is the number of random bytes in a token id.
const idBytes = 8

// NewDatabaseToken returns a new database token: DatabasePrefix followed by
// 32 random bytes in lowercase hex.
func NewDatabaseToken() (string, error) {
	return randomToken(DatabasePrefix, secretBytes)
}

// NewSessionToken returns a new session token: SessionPrefix followed by 32
// random bytes in lowercase hex.
func NewSessionToken() (string, error) {
	return randomToken(SessionPrefix, secretBytes)
}

// NewTokenID returns a new token id: IDPrefix followed by 8 random bytes in
// lowercase hex. Ids are not secret.
func NewTokenID() (string, error) {
	return randomToken(IDPrefix, idBytes)
}

func randomToken(prefix string, n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate %s token: %w", strings.TrimSuffix(prefix, "_"), err)
	}
	return prefix + hex.EncodeToString(b), nil
}

// Hash returns the SHA-256 of token in lowercase hex: the form stored in the
// tokens table.
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ValidDatabaseToken reports whether s is a well-formed database token:
// DatabasePrefix followed by exactly 64 lowercase hex characters.
func ValidDatabaseToken(s string) bool {
	return validToken(s, DatabasePrefix)
}

// ValidSessionToken reports whether s is a well-formed session token.
func ValidSessionToken(s string) bool {
	return validToken(s, SessionPrefix)
}

func validToken(s, prefix string) bool {
	secret, ok := strings.CutPrefix(s, prefix)
	if !ok || len(secret) != 2*secretBytes {
		return false
	}
	for i := 0; i < len(secret); i++ {
		c := secret[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ParseBearer extracts the token from an Authorization header value of the
// form "Bearer <token>". The scheme is matched case-insensitively. It
// reports false for another scheme, a missing token or a token containing
// spaces.
func ParseBearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", false
	}
	return token, true
}
