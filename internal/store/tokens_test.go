package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestTokensCreateLookupRevoke(t *testing.T) {
	ctx := context.Background()
	st, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	created := time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.FixedZone("CET", 3600))
	a := Token{ID: "tok_a", Name: "ci", Hash: "h-a", Role: "user", CreatedAt: created}
	b := Token{ID: "tok_b", Name: "ops", Hash: "h-b", Role: "admin", Scope: "service:echo", CreatedAt: created.Add(time.Second)}
	for _, tok := range []Token{a, b} {
		if err := st.CreateToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CreateToken(ctx, Token{ID: "tok_c", Name: "ci", Hash: "h-c", Role: "user", CreatedAt: created}); !errors.Is(err, ErrConflict) {
		t.Fatalf("a taken name: %v", err)
	}
	if err := st.CreateToken(ctx, Token{ID: "tok_d", Name: "other", Hash: "h-a", Role: "user", CreatedAt: created}); !errors.Is(err, ErrConflict) {
		t.Fatalf("a taken hash: %v", err)
	}

	got, err := st.TokenByHash(ctx, "h-b")
	if err != nil || got.ID != "tok_b" || got.Name != "ops" || got.Role != "admin" || got.Scope != "service:echo" {
		t.Fatalf("by hash: %+v %v", got, err)
	}
	if !got.CreatedAt.Equal(created.Add(time.Second)) || got.CreatedAt.Location() != time.UTC {
		t.Fatalf("created_at %v, want %v in UTC", got.CreatedAt, created.Add(time.Second))
	}
	if got.LastUsedAt != nil || got.RevokedAt != nil {
		t.Fatalf("a new token has last_used/revoked: %+v", got)
	}
	if _, err := st.TokenByHash(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an unknown hash: %v", err)
	}
	var raw string
	st.DB.QueryRow(`SELECT created_at FROM tokens WHERE id = 'tok_a'`).Scan(&raw)
	if raw != "2025-03-04T04:06:07.123456789Z" {
		t.Fatalf("created_at stored as %q, want RFC 3339 UTC", raw)
	}

	used := time.Now()
	if err := st.TouchToken(ctx, "tok_a", used); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.TokenByHash(ctx, "h-a"); got.LastUsedAt == nil || !got.LastUsedAt.Equal(used) {
		t.Fatalf("last_used_at %v, want %v", got.LastUsedAt, used)
	}

	if n, err := st.CountTokens(ctx); err != nil || n != 2 {
		t.Fatalf("count: %d %v", n, err)
	}
	// Revoke by name and by ID; an unknown or already revoked token is ErrNotFound.
	if err := st.RevokeToken(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeToken(ctx, "ci"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoking twice: %v", err)
	}
	if err := st.RevokeToken(ctx, "tok_b"); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeToken(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an unknown token: %v", err)
	}
	if n, _ := st.CountTokens(ctx); n != 0 {
		t.Fatalf("%d live tokens after revoking both", n)
	}
	toks, err := st.ListTokens(ctx)
	if err != nil || len(toks) != 2 || toks[0].Name != "ci" || toks[1].Name != "ops" {
		t.Fatalf("list: %+v %v", toks, err)
	}
	for _, tok := range toks {
		if tok.RevokedAt == nil {
			t.Fatalf("%s is not marked revoked", tok.Name)
		}
	}
}
