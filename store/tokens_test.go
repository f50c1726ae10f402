package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"cliq/store"
	"cliq/store/storetest"
)

func hashOf(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func mustCreateToken(tb testing.TB, db *store.DB, tok store.Token) {
	tb.Helper()
	if err := db.CreateToken(context.Background(), tok); err != nil {
		tb.Fatalf("CreateToken(%s): %v", tok.ID, err)
	}
}

func TestDB_CreateToken(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := testContext(t)

		t.Run("OK", func(t *testing.T) {
			want := store.Token{ID: "tok_ok", Label: "ci", Hash: hashOf("one"), CreatedAt: at(0)}
			mustCreateToken(t, db, want)
			got, err := db.TokenByHash(ctx, want.Hash)
			if err != nil {
				t.Fatalf("TokenByHash: %v", err)
			}
			if got.ID != want.ID || got.Label != want.Label || got.Hash != want.Hash {
				t.Errorf("TokenByHash() = %+v, want %+v", got, want)
			}
			if !got.CreatedAt.Equal(want.CreatedAt) {
				t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, want.CreatedAt)
			}
			if got.LastUsedAt != nil || got.RevokedAt != nil {
				t.Errorf("new token has last_used_at %v, revoked_at %v; want both unset", got.LastUsedAt, got.RevokedAt)
			}
		})

		t.Run("ErrConflict", func(t *testing.T) {
			mustCreateToken(t, db, store.Token{ID: "tok_first", Hash: hashOf("dup")})
			err := db.CreateToken(ctx, store.Token{ID: "tok_second", Hash: hashOf("dup")})
			if !errors.Is(err, store.ErrConflict) {
				t.Errorf("CreateToken(same hash) error = %v, want ErrConflict", err)
			}
			err = db.CreateToken(ctx, store.Token{ID: "tok_first", Hash: hashOf("other")})
			if !errors.Is(err, store.ErrConflict) {
				t.Errorf("CreateToken(same id) error = %v, want ErrConflict", err)
			}
		})

		t.Run("ErrInvalid", func(t *testing.T) {
			for _, tok := range []store.Token{
				{Hash: hashOf("x")},
				{ID: "tok_badhash", Hash: "abc"},
				{ID: "tok_upper", Hash: strings.ToUpper(hashOf("x"))},
			} {
				if err := db.CreateToken(ctx, tok); !errors.Is(err, store.ErrInvalid) {
					t.Errorf("CreateToken(%+v) error = %v, want ErrInvalid", tok, err)
				}
			}
		})
	})
}

func TestDB_TokenByHash(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		hash := hashOf("missing")
		_, err := db.TokenByHash(testContext(t), hash)
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("TokenByHash(missing) error = %v, want ErrNotFound", err)
		}
		if err != nil && strings.Contains(err.Error(), hash) {
			t.Errorf("error repeats the hash: %v", err)
		}
	})
}

func TestDB_Tokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := testContext(t)
		mustCreateToken(t, db, store.Token{ID: "tok_b", Hash: hashOf("b"), CreatedAt: at(2)})
		mustCreateToken(t, db, store.Token{ID: "tok_a", Hash: hashOf("a"), CreatedAt: at(1)})
		if _, err := db.RevokeToken(ctx, "tok_a"); err != nil {
			t.Fatalf("RevokeToken: %v", err)
		}

		tokens, err := db.Tokens(ctx)
		if err != nil {
			t.Fatalf("Tokens: %v", err)
		}
		if len(tokens) != 2 || tokens[0].ID != "tok_a" || tokens[1].ID != "tok_b" {
			t.Fatalf("Tokens() = %+v, want tok_a then tok_b", tokens)
		}
		if !tokens[0].Revoked() {
			t.Error("revoked token listed as active")
		}
		if tokens[1].Revoked() {
			t.Error("active token listed as revoked")
		}
	})
}

func TestDB_RevokeToken(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := testContext(t)

		t.Run("Twice", func(t *testing.T) {
			mustCreateToken(t, db, store.Token{ID: "tok_rev", Hash: hashOf("rev")})
			first, err := db.RevokeToken(ctx, "tok_rev")
			if err != nil {
				t.Fatalf("RevokeToken: %v", err)
			}
			if first.RevokedAt == nil {
				t.Fatal("RevokedAt not set")
			}
			second, err := db.RevokeToken(ctx, "tok_rev")
			if err != nil {
				t.Fatalf("second RevokeToken: %v", err)
			}
			if second.RevokedAt == nil || !second.RevokedAt.Equal(*first.RevokedAt) {
				t.Errorf("second revoke changed revoked_at from %v to %v", first.RevokedAt, second.RevokedAt)
			}
			got, err := db.TokenByHash(ctx, hashOf("rev"))
			if err != nil {
				t.Fatalf("TokenByHash: %v", err)
			}
			if !got.Revoked() {
				t.Error("TokenByHash returns the token as active after revoke")
			}
		})

		t.Run("ErrNotFound", func(t *testing.T) {
			if _, err := db.RevokeToken(ctx, "tok_missing"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("RevokeToken(missing) error = %v, want ErrNotFound", err)
			}
		})
	})
}

func TestDB_TouchToken(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := testContext(t)
		mustCreateToken(t, db, store.Token{ID: "tok_touch", Hash: hashOf("touch"), CreatedAt: at(0)})

		lastUsed := func() *store.Token {
			t.Helper()
			tok, err := db.Token(ctx, "tok_touch")
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			return &tok
		}

		if err := db.TouchToken(ctx, "tok_touch", at(60)); err != nil {
			t.Fatalf("TouchToken: %v", err)
		}
		if got := lastUsed().LastUsedAt; got == nil || !got.Equal(at(60)) {
			t.Errorf("LastUsedAt = %v, want %v", got, at(60))
		}

		// An older time, as from a slower replica, does not move it back.
		if err := db.TouchToken(ctx, "tok_touch", at(30)); err != nil {
			t.Fatalf("TouchToken(older): %v", err)
		}
		if got := lastUsed().LastUsedAt; got == nil || !got.Equal(at(60)) {
			t.Errorf("LastUsedAt after older touch = %v, want %v", got, at(60))
		}

		if err := db.TouchToken(ctx, "tok_missing", at(90)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("TouchToken(missing) error = %v, want ErrNotFound", err)
		}
	})
}

// TestDB_ConcurrentTokens creates 50 tokens in parallel on one SQLite file
// while other goroutines look tokens up and touch them: none may fail with
// "database is locked".
func TestDB_ConcurrentTokens(t *testing.T) {
	db := storetest.OpenPath(t, filepath.Join(t.TempDir(), "cliq.db"))
	ctx := testContext(t)
	mustCreateToken(t, db, store.Token{ID: "tok_seed", Hash: hashOf("seed")})

	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, 3*n)
	for i := 0; i < n; i++ {
		wg.Add(3)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("tok_%02d", i)
			errs <- db.CreateToken(ctx, store.Token{ID: id, Label: "parallel", Hash: hashOf(id)})
		}()
		go func() {
			defer wg.Done()
			_, err := db.TokenByHash(ctx, hashOf("seed"))
			errs <- err
		}()
		go func() {
			defer wg.Done()
			errs <- db.TouchToken(ctx, "tok_seed", at(i))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("parallel call: %v", err)
		}
	}

	tokens, err := db.Tokens(ctx)
	if err != nil {
		t.Fatalf("Tokens: %v", err)
	}
	if len(tokens) != n+1 {
		t.Errorf("Tokens() returned %d tokens, want %d", len(tokens), n+1)
	}
}
