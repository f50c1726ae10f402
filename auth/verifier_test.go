package auth_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"cliq/auth"
	"cliq/store"
	"cliq/store/storetest"
)

func testContext(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// mustCreateToken stores a new database token and returns its plaintext and id.
func mustCreateToken(tb testing.TB, db *store.DB, label string) (plaintext, id string) {
	tb.Helper()
	plaintext, err := auth.NewDatabaseToken()
	if err != nil {
		tb.Fatal(err)
	}
	id, err = auth.NewTokenID()
	if err != nil {
		tb.Fatal(err)
	}
	if err := db.CreateToken(context.Background(), store.Token{ID: id, Label: label, Hash: auth.Hash(plaintext)}); err != nil {
		tb.Fatalf("CreateToken: %v", err)
	}
	return plaintext, id
}

func mustSessionToken(tb testing.TB) string {
	tb.Helper()
	session, err := auth.NewSessionToken()
	if err != nil {
		tb.Fatal(err)
	}
	return session
}

// clock is a settable time source for the verifier.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestVerifier_Verify(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := testContext(t)
		session := mustSessionToken(t)
		v := auth.NewVerifier(session, db)

		t.Run("Session", func(t *testing.T) {
			p, err := v.Verify(ctx, session)
			if err != nil {
				t.Fatalf("Verify(session): %v", err)
			}
			if p.Kind != auth.KindSession {
				t.Errorf("Kind = %q, want %q", p.Kind, auth.KindSession)
			}
		})

		t.Run("DatabaseToken", func(t *testing.T) {
			plaintext, id := mustCreateToken(t, db, "ci")
			p, err := v.Verify(ctx, plaintext)
			if err != nil {
				t.Fatalf("Verify(database token): %v", err)
			}
			want := auth.Principal{Kind: auth.KindDatabase, TokenID: id, Label: "ci"}
			if p != want {
				t.Errorf("Verify() = %+v, want %+v", p, want)
			}
		})

		t.Run("RevokedFailsNextCall", func(t *testing.T) {
			plaintext, id := mustCreateToken(t, db, "soon revoked")
			if _, err := v.Verify(ctx, plaintext); err != nil {
				t.Fatalf("Verify before revoke: %v", err)
			}
			if _, err := db.RevokeToken(ctx, id); err != nil {
				t.Fatalf("RevokeToken: %v", err)
			}
			if _, err := v.Verify(ctx, plaintext); !errors.Is(err, auth.ErrInvalidToken) {
				t.Errorf("Verify after revoke error = %v, want ErrInvalidToken", err)
			}
		})

		t.Run("ErrInvalidToken", func(t *testing.T) {
			unknown, err := auth.NewDatabaseToken()
			if err != nil {
				t.Fatal(err)
			}
			otherSession := mustSessionToken(t)
			for name, token := range map[string]string{
				"empty":         "",
				"unknown":       unknown,
				"other session": otherSession,
				"malformed":     auth.DatabasePrefix + "short",
				"no prefix":     strings.TrimPrefix(unknown, auth.DatabasePrefix),
				"session cut":   session[:len(session)-1],
			} {
				_, err := v.Verify(ctx, token)
				if !errors.Is(err, auth.ErrInvalidToken) {
					t.Errorf("Verify(%s) error = %v, want ErrInvalidToken", name, err)
				}
			}
		})
	})
}

func TestVerifier_VerifyWithoutSession(t *testing.T) {
	v := auth.NewVerifier("", nil)
	for _, prefix := range []string{auth.SessionPrefix, auth.DatabasePrefix} {
		token := prefix + strings.Repeat("0", 64)
		if _, err := v.Verify(testContext(t), token); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("Verify(%s…) error = %v, want ErrInvalidToken", prefix, err)
		}
	}
}

func TestVerifier_VerifyStoreDown(t *testing.T) {
	db := storetest.Open(t)
	plaintext, _ := mustCreateToken(t, db, "ci")
	v := auth.NewVerifier("", db)
	db.Close()

	_, err := v.Verify(testContext(t), plaintext)
	if err == nil {
		t.Fatal("Verify succeeded with a closed store")
	}
	if errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("Verify error = %v, want a store error, not ErrInvalidToken", err)
	}
	if strings.Contains(err.Error(), plaintext[len(auth.DatabasePrefix):len(auth.DatabasePrefix)+8]) {
		t.Errorf("error contains part of the token: %v", err)
	}
}

// countingStore counts the last_used_at writes that reach the store.
type countingStore struct {
	auth.TokenStore
	mu      sync.Mutex
	touches []time.Time
}

func (s *countingStore) TouchToken(ctx context.Context, id string, at time.Time) error {
	s.mu.Lock()
	s.touches = append(s.touches, at)
	s.mu.Unlock()
	return s.TokenStore.TouchToken(ctx, id, at)
}

func (s *countingStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.touches)
}

func TestVerifier_TouchThrottle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := testContext(t)
		plaintext, id := mustCreateToken(t, db, "ci")
		start := time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)
		clk := &clock{now: start}
		counter := &countingStore{TokenStore: db}
		v := auth.NewVerifier("", counter)
		v.SetClock(clk.Now)

		verify := func(t *testing.T) {
			t.Helper()
			if _, err := v.Verify(ctx, plaintext); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		}
		lastUsed := func(t *testing.T) *time.Time {
			t.Helper()
			tok, err := db.Token(ctx, id)
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			return tok.LastUsedAt
		}

		verify(t)
		if got := lastUsed(t); got == nil || !got.Equal(start) {
			t.Fatalf("LastUsedAt after first use = %v, want %v", got, start)
		}

		// More uses within the minute write nothing.
		for i := 0; i < 5; i++ {
			clk.Advance(10 * time.Second)
			verify(t)
		}
		if got := counter.count(); got != 1 {
			t.Errorf("%d writes within one minute, want 1", got)
		}
		if got := lastUsed(t); got == nil || !got.Equal(start) {
			t.Errorf("LastUsedAt within the minute = %v, want %v", got, start)
		}

		// A minute after the first write, the next use writes again.
		clk.Advance(10 * time.Second)
		verify(t)
		if got := counter.count(); got != 2 {
			t.Errorf("%d writes after one minute, want 2", got)
		}
		if got := lastUsed(t); got == nil || !got.Equal(start.Add(time.Minute)) {
			t.Errorf("LastUsedAt after one minute = %v, want %v", got, start.Add(time.Minute))
		}

		// A fresh verifier, as after a restart, trusts the stored time.
		fresh := auth.NewVerifier("", counter)
		fresh.SetClock(clk.Now)
		clk.Advance(time.Second)
		if _, err := fresh.Verify(ctx, plaintext); err != nil {
			t.Fatalf("Verify on a fresh verifier: %v", err)
		}
		if got := counter.count(); got != 2 {
			t.Errorf("fresh verifier wrote last_used_at one second after the stored time (%d writes, want 2)", got)
		}
	})
}

func TestVerifier_VerifyConcurrent(t *testing.T) {
	db := storetest.Open(t)
	ctx := testContext(t)
	session := mustSessionToken(t)
	v := auth.NewVerifier(session, db)
	plaintext, _ := mustCreateToken(t, db, "seed")

	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			tok, err := auth.NewDatabaseToken()
			if err == nil {
				err = db.CreateToken(ctx, store.Token{ID: fmt.Sprintf("tok_p%02d", i), Hash: auth.Hash(tok)})
			}
			errs <- err
		}()
		go func() {
			defer wg.Done()
			token := plaintext
			if i%2 == 0 {
				token = session
			}
			_, err := v.Verify(ctx, token)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("parallel call: %v", err)
		}
	}
}

// failingTouchStore fails every last_used_at write.
type failingTouchStore struct {
	auth.TokenStore
	mu    sync.Mutex
	calls int
}

func (s *failingTouchStore) TouchToken(ctx context.Context, id string, at time.Time) error {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	return errors.New("disk full")
}

func TestVerifier_TouchFailure(t *testing.T) {
	db := storetest.Open(t)
	ctx := testContext(t)
	plaintext, id := mustCreateToken(t, db, "ci")
	failing := &failingTouchStore{TokenStore: db}

	var logs strings.Builder
	var logMu sync.Mutex
	v := auth.NewVerifier("", failing)
	v.SetLogger(slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &logMu}, nil)))

	for i := 0; i < 2; i++ {
		if _, err := v.Verify(ctx, plaintext); err != nil {
			t.Fatalf("Verify #%d with a failing touch: %v", i+1, err)
		}
	}
	if failing.calls != 2 {
		t.Errorf("TouchToken called %d times, want 2 (a failed write is retried)", failing.calls)
	}

	logMu.Lock()
	out := logs.String()
	logMu.Unlock()
	if !strings.Contains(out, id) {
		t.Errorf("log does not name the token id: %s", out)
	}
	if strings.Contains(out, plaintext[len(auth.DatabasePrefix):len(auth.DatabasePrefix)+8]) {
		t.Errorf("log contains part of the token: %s", out)
	}
}

type lockedWriter struct {
	w  *strings.Builder
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
