package auth

import (
	"context"
	"errors"
	"fmt"

	"cliq/store"
)

// ErrMalformedToken means a value meant as a database token is not
// DatabasePrefix followed by 64 lowercase hex characters.
var ErrMalformedToken = errors.New("malformed database token")

// SeedStore is the part of the store SeedToken needs; *store.DB has it.
type SeedStore interface {
	TokenByHash(ctx context.Context, hash string) (store.Token, error)
	CreateToken(ctx context.Context, t store.Token) error
}

// SeedToken makes sure the database token plaintext exists, as the server
// does for CLIQ_ADMIN_TOKEN at start. When a token with the same hash is
// stored already, SeedToken changes nothing and returns its id with created
// false, so a revoked seed token stays revoked. Otherwise it stores a new
// token with label and returns its id with created true.
//
// A malformed plaintext returns ErrMalformedToken. No error includes the
// plaintext or any part of it.
func SeedToken(ctx context.Context, db SeedStore, plaintext, label string) (id string, created bool, err error) {
	if !ValidDatabaseToken(plaintext) {
		return "", false, fmt.Errorf("seed token: %w: want %q followed by 64 lowercase hex characters, e.g. %s$(openssl rand -hex 32)",
			ErrMalformedToken, DatabasePrefix, DatabasePrefix)
	}
	hash := Hash(plaintext)

	existing, err := db.TokenByHash(ctx, hash)
	if err == nil {
		return existing.ID, false, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return "", false, fmt.Errorf("seed token: %w", err)
	}

	id, err = NewTokenID()
	if err != nil {
		return "", false, fmt.Errorf("seed token: %w", err)
	}
	err = db.CreateToken(ctx, store.Token{ID: id, Label: label, Hash: hash})
	if errors.Is(err, store.ErrConflict) {
		// Another replica seeded the same token between the lookup and the insert.
		existing, lookupErr := db.TokenByHash(ctx, hash)
		if lookupErr != nil {
			return "", false, fmt.Errorf("seed token: %w", lookupErr)
		}
		return existing.ID, false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("seed token: %w", err)
	}
	return id, true, nil
}
