package store

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSessionsAndSigninCodes(t *testing.T) {
	ctx := context.Background()
	st, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	if err := st.CreateToken(ctx, Token{ID: "tok_a", Name: "ann", Hash: "h-a", Role: "user", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSession(ctx, Session{ID: "ses_1", Hash: "s-1", TokenID: "tok_a", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSession(ctx, Session{ID: "ses_old", Hash: "s-old", TokenID: "tok_a", CreatedAt: now, ExpiresAt: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	se, tok, err := st.SessionByHash(ctx, "s-1")
	if err != nil || se.ID != "ses_1" || tok.Name != "ann" || !se.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("session: %+v %+v %v", se, tok, err)
	}
	if err := st.DeleteSession(ctx, "none"); err != nil {
		t.Fatalf("deleting a missing session: %v", err)
	}
	if err := st.PurgeExpired(ctx, now); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.SessionByHash(ctx, "s-old"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the expired session was kept: %v", err)
	}
	if _, _, err := st.SessionByHash(ctx, "s-1"); err != nil {
		t.Fatalf("the live session was purged: %v", err)
	}

	// A code is used once, even by callers racing for it.
	if err := st.CreateSigninCode(ctx, SigninCode{Hash: "c-1", TokenID: "tok_a", Next: "/proxy/echo/", CreatedAt: now, ExpiresAt: now.Add(2 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	var won atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c, err := st.ConsumeSigninCode(ctx, "c-1", now); err == nil && c.Next == "/proxy/echo/" && c.UsedAt != nil {
				won.Add(1)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d callers used one code", won.Load())
	}

	// Revoking a token's sessions removes them and its codes.
	st.CreateSigninCode(ctx, SigninCode{Hash: "c-2", TokenID: "tok_a", Next: "/", CreatedAt: now, ExpiresAt: now.Add(time.Minute)})
	if err := st.DeleteTokenSessions(ctx, "tok_a"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.SessionByHash(ctx, "s-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("session after the token's sessions were deleted: %v", err)
	}
	if _, err := st.ConsumeSigninCode(ctx, "c-2", now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("code after the token's sessions were deleted: %v", err)
	}
}
