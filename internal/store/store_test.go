package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestMigrationsAreIdempotentAndJobsTransition(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "berth.db")
	st, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := st.InsertJob(ctx, JobRow{ID: "j1", Name: "a", State: "queued", Block: `{}`, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	// Reopening applies nothing twice and keeps the data.
	st, err = OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n int
	st.DB.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n)
	if n < 3 {
		t.Fatalf("%d migrations recorded", n)
	}
	// Only one of two parties wins a transition out of queued.
	won, err := st.TransitionJob(ctx, "j1", []string{"queued"}, "preparing", "", "", nil)
	if err != nil || !won {
		t.Fatalf("first transition: %v %v", won, err)
	}
	won, err = st.TransitionJob(ctx, "j1", []string{"queued"}, "cancelled", "cancelled", "", &now)
	if err != nil || won {
		t.Fatalf("second transition won too: %v %v", won, err)
	}
	j, err := st.GetJob(ctx, "j1")
	if err != nil || j.State != "preparing" || !j.CreatedAt.Equal(now) {
		t.Fatalf("job %+v %v", j, err)
	}
	if _, err := st.GetJob(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("absent job: %v", err)
	}
	counts, _ := st.CountJobsByState(ctx)
	if counts["preparing"] != 1 {
		t.Fatalf("counts %v", counts)
	}
}
