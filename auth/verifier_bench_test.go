package auth_test

import (
	"context"
	"testing"

	"cliq/auth"
	"cliq/store"
	"cliq/store/storetest"
)

func BenchmarkVerifier_Session(b *testing.B) {
	session := mustSessionToken(b)
	v := auth.NewVerifier(session, nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, session); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkVerifier_DatabaseSQLite(b *testing.B) {
	benchmarkDatabase(b, storetest.Open(b))
}

func BenchmarkVerifier_DatabasePostgres(b *testing.B) {
	benchmarkDatabase(b, storetest.OpenPostgres(b))
}

// benchmarkDatabase verifies one database token from parallel goroutines:
// one indexed lookup per call, and a last_used_at write once a minute.
func benchmarkDatabase(b *testing.B, db *store.DB) {
	plaintext, _ := mustCreateToken(b, db, "bench")
	v := auth.NewVerifier("", db)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, plaintext); err != nil {
				b.Fatal(err)
			}
		}
	})
}
