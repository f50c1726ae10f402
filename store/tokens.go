package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Token is a stored API token. Only the SHA-256 of the secret is kept, as 64
// lowercase hex characters in Hash.
type Token struct {
	ID         string
	Label      string
	Hash       string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// Revoked reports whether the token has been revoked.
func (t Token) Revoked() bool {
	return t.RevokedAt != nil
}

const tokenColumns = `id, label, hash, created_at, last_used_at, revoked_at`

const tokenByHashQuery = `SELECT ` + tokenColumns + ` FROM tokens WHERE hash = $1`

// CreateToken stores t. A zero CreatedAt means now. It returns ErrConflict
// when the id or the hash is taken, and ErrInvalid for an empty id or a hash
// that is not 64 lowercase hex characters.
func (db *DB) CreateToken(ctx context.Context, t Token) error {
	if t.ID == "" {
		return fmt.Errorf("create token: %w: empty id", ErrInvalid)
	}
	if !isSHA256Hex(t.Hash) {
		return fmt.Errorf("create token %s: %w: hash must be 64 lowercase hex characters", t.ID, ErrInvalid)
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}

	d := db.dialect
	_, err := db.db.ExecContext(ctx,
		`INSERT INTO tokens (`+tokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		t.ID, t.Label, t.Hash, d.timeValue(t.CreatedAt), d.nullTimeValue(t.LastUsedAt), d.nullTimeValue(t.RevokedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("create token %s: id or hash already exists: %w", t.ID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create token %s: %w", t.ID, d.scrub(err))
	}
	return nil
}

// TokenByHash returns the token whose secret hashes to hash, revoked or not,
// or ErrNotFound. The error never repeats the hash.
func (db *DB) TokenByHash(ctx context.Context, hash string) (Token, error) {
	row := db.tokenByHash.QueryRowContext(ctx, hash)
	t, err := scanToken(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, fmt.Errorf("token: %w", ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("get token by hash: %w", db.dialect.scrub(err))
	}
	return t, nil
}

// Token returns the token with the given id, or ErrNotFound.
func (db *DB) Token(ctx context.Context, id string) (Token, error) {
	row := db.db.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = $1`, id)
	t, err := scanToken(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, fmt.Errorf("token %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("get token %s: %w", id, db.dialect.scrub(err))
	}
	return t, nil
}

// Tokens returns every token, revoked ones included, oldest first.
func (db *DB) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", db.dialect.scrub(err))
	}
	defer rows.Close()

	tokens := []Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		tokens = append(tokens, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", db.dialect.scrub(err))
	}
	return tokens, nil
}

// RevokeToken marks the token revoked now and returns it. Revoking a revoked
// token changes nothing and returns it as it is. It returns ErrNotFound when
// no token has the id.
func (db *DB) RevokeToken(ctx context.Context, id string) (Token, error) {
	d := db.dialect
	row := db.db.QueryRowContext(ctx, `
		UPDATE tokens SET revoked_at = COALESCE(revoked_at, $2)
		WHERE id = $1
		RETURNING `+tokenColumns,
		id, d.timeValue(time.Now()))
	t, err := scanToken(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, fmt.Errorf("token %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("revoke token %s: %w", id, d.scrub(err))
	}
	return t, nil
}

// TouchToken sets the token's last_used_at to at, unless it already contains
// a later time. It returns ErrNotFound when no token has the id.
func (db *DB) TouchToken(ctx context.Context, id string, at time.Time) error {
	d := db.dialect
	res, err := db.db.ExecContext(ctx, `
		UPDATE tokens SET last_used_at = $2
		WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)`,
		id, d.timeValue(at))
	if err != nil {
		return fmt.Errorf("touch token %s: %w", id, d.scrub(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("touch token %s: %w", id, d.scrub(err))
	}
	if n > 0 {
		return nil
	}

	// No row changed: either the id is unknown or last_used_at is already later.
	if _, err := db.Token(ctx, id); err != nil {
		return fmt.Errorf("touch token: %w", err)
	}
	return nil
}

func scanToken(row rowScanner) (Token, error) {
	var t Token
	var created, lastUsed, revoked nullTime
	if err := row.Scan(&t.ID, &t.Label, &t.Hash, &created, &lastUsed, &revoked); err != nil {
		return Token{}, err
	}
	t.CreatedAt, t.LastUsedAt, t.RevokedAt = created.Time, lastUsed.ptr(), revoked.ptr()
	return t, nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
