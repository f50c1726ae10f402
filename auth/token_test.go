package auth_test

import (
	"strings"
	"testing"

	"cliq/auth"
)

func TestNewDatabaseToken(t *testing.T) {
	a, err := auth.NewDatabaseToken()
	if err != nil {
		t.Fatalf("NewDatabaseToken: %v", err)
	}
	b, err := auth.NewDatabaseToken()
	if err != nil {
		t.Fatalf("NewDatabaseToken: %v", err)
	}
	if !auth.ValidDatabaseToken(a) {
		t.Errorf("generated token is not valid (length %d)", len(a))
	}
	if a == b {
		t.Error("two generated tokens are equal")
	}
	if auth.ValidSessionToken(a) {
		t.Error("database token passes as a session token")
	}
}

func TestNewSessionToken(t *testing.T) {
	tok, err := auth.NewSessionToken()
	if err != nil {
		t.Fatalf("NewSessionToken: %v", err)
	}
	if !strings.HasPrefix(tok, auth.SessionPrefix) || !auth.ValidSessionToken(tok) {
		t.Errorf("session token has the wrong form (length %d)", len(tok))
	}
	if auth.ValidDatabaseToken(tok) {
		t.Error("session token passes as a database token")
	}
}

func TestNewTokenID(t *testing.T) {
	id, err := auth.NewTokenID()
	if err != nil {
		t.Fatalf("NewTokenID: %v", err)
	}
	if !strings.HasPrefix(id, auth.IDPrefix) || len(id) != len(auth.IDPrefix)+16 {
		t.Errorf("NewTokenID() = %q, want tok_ and 16 hex characters", id)
	}
}

func TestHash(t *testing.T) {
	// SHA-256 of "abc" from FIPS 180-2, appendix B.1.
	const want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := auth.Hash("abc"); got != want {
		t.Errorf("Hash(abc) = %s, want %s", got, want)
	}
}

func TestValidDatabaseToken(t *testing.T) {
	hex64 := strings.Repeat("0123456789abcdef", 4)
	tests := []struct {
		in   string
		want bool
	}{
		{auth.DatabasePrefix + hex64, true},
		{auth.DatabasePrefix + hex64[:63], false},
		{auth.DatabasePrefix + hex64 + "0", false},
		{auth.DatabasePrefix + strings.ToUpper(hex64), false},
		{auth.DatabasePrefix + hex64[:63] + "g", false},
		{auth.SessionPrefix + hex64, false},
		{hex64, false},
		{"", false},
	}
	for _, tt := range tests {
		if got := auth.ValidDatabaseToken(tt.in); got != tt.want {
			t.Errorf("ValidDatabaseToken(%.20s… length %d) = %v, want %v", tt.in, len(tt.in), got, tt.want)
		}
	}
}

func TestParseBearer(t *testing.T) {
	tests := []struct {
		header string
		want   string
		ok     bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER   abc  ", "abc", true},
		{"  Bearer abc", "abc", true},
		{"Basic abc", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearer a b", "", false},
		{"Bearerabc", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := auth.ParseBearer(tt.header)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseBearer(%q) = %q, %v, want %q, %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}
