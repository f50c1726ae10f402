package auth_test

import (
	"errors"
	"strings"
	"testing"

	"cliq/auth"
	"cliq/store"
	"cliq/store/storetest"
)

func TestSeedToken(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := testContext(t)

		t.Run("Twice", func(t *testing.T) {
			plaintext, err := auth.NewDatabaseToken()
			if err != nil {
				t.Fatal(err)
			}
			id, created, err := auth.SeedToken(ctx, db, plaintext, "admin")
			if err != nil {
				t.Fatalf("SeedToken: %v", err)
			}
			if !created || !strings.HasPrefix(id, auth.IDPrefix) {
				t.Errorf("SeedToken() = %q, %v, want a new tok_ id and created", id, created)
			}
			before, err := db.Tokens(ctx)
			if err != nil {
				t.Fatal(err)
			}

			again, created, err := auth.SeedToken(ctx, db, plaintext, "another label")
			if err != nil {
				t.Fatalf("second SeedToken: %v", err)
			}
			if created || again != id {
				t.Errorf("second SeedToken() = %q, %v, want %q, false", again, created, id)
			}
			after, err := db.Tokens(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before) {
				t.Errorf("second seed changed the token count from %d to %d", len(before), len(after))
			}
			tok, err := db.Token(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if tok.Label != "admin" {
				t.Errorf("second seed changed the label to %q", tok.Label)
			}

			p, err := auth.NewVerifier("", db).Verify(ctx, plaintext)
			if err != nil {
				t.Fatalf("Verify(seeded token): %v", err)
			}
			if p.TokenID != id {
				t.Errorf("Verify() token id = %q, want %q", p.TokenID, id)
			}
		})

		t.Run("RevokedStaysRevoked", func(t *testing.T) {
			plaintext, err := auth.NewDatabaseToken()
			if err != nil {
				t.Fatal(err)
			}
			id, _, err := auth.SeedToken(ctx, db, plaintext, "admin")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.RevokeToken(ctx, id); err != nil {
				t.Fatal(err)
			}
			if _, created, err := auth.SeedToken(ctx, db, plaintext, "admin"); err != nil || created {
				t.Fatalf("SeedToken(revoked) = created %v, error %v; want false, nil", created, err)
			}
			tok, err := db.Token(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !tok.Revoked() {
				t.Error("seeding again reactivated a revoked token")
			}
		})

		t.Run("Concurrent", func(t *testing.T) {
			plaintext, err := auth.NewDatabaseToken()
			if err != nil {
				t.Fatal(err)
			}
			const n = 8
			ids := make(chan string, n)
			errs := make(chan error, n)
			for i := 0; i < n; i++ {
				go func() {
					id, _, err := auth.SeedToken(ctx, db, plaintext, "admin")
					ids <- id
					errs <- err
				}()
			}
			first := ""
			for i := 0; i < n; i++ {
				if err := <-errs; err != nil {
					t.Errorf("concurrent SeedToken: %v", err)
				}
				id := <-ids
				if first == "" {
					first = id
				}
				if id != first {
					t.Errorf("concurrent seeds returned ids %q and %q, want one id", first, id)
				}
			}
		})

		t.Run("ErrMalformedToken", func(t *testing.T) {
			before, err := db.Tokens(ctx)
			if err != nil {
				t.Fatal(err)
			}
			secretPart := "s3cr3tvalue"
			for _, bad := range []string{
				"",
				"cliq_sk_" + secretPart,
				"cliq_ss_" + strings.Repeat("a", 64),
				strings.Repeat("a", 64) + secretPart,
			} {
				_, _, err := auth.SeedToken(ctx, db, bad, "admin")
				if !errors.Is(err, auth.ErrMalformedToken) {
					t.Errorf("SeedToken(length %d) error = %v, want ErrMalformedToken", len(bad), err)
				}
				if err != nil && strings.Contains(err.Error(), secretPart) {
					t.Errorf("error echoes the value: %v", err)
				}
			}
			after, err := db.Tokens(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before) {
				t.Errorf("malformed seeds changed the token count from %d to %d", len(before), len(after))
			}
		})
	})
}
