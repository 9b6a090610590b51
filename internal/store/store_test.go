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

func TestConfigVersionsKeepHistoryAndState(t *testing.T) {
	ctx := context.Background()
	st, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.PutComponent(ctx, "c", `{"id":"c"}`)
	if v, err := st.PutConfig(ctx, "cfg", "c", `{"v":1}`); err != nil || v != 1 {
		t.Fatalf("first: %d %v", v, err)
	}
	if err := SaveState(ctx, st.DB, "cfg", `{"s":1}`, 0); err != nil {
		t.Fatal(err)
	}
	if v, err := st.PutConfig(ctx, "cfg", "c", `{"v":2}`); err != nil || v != 2 {
		t.Fatalf("second: %d %v", v, err)
	}
	row, _ := st.GetConfig(ctx, "cfg")
	if row.Body != `{"v":2}` || row.State != `{"s":1}` || row.StateVersion != 1 {
		t.Fatalf("row %+v", row)
	}
	var n int
	st.DB.QueryRow(`SELECT COUNT(*) FROM config_versions WHERE config_id = 'cfg'`).Scan(&n)
	if n != 2 {
		t.Fatalf("%d versions kept", n)
	}
	if err := SaveState(ctx, st.DB, "cfg", `{"s":2}`, 0); !errors.Is(err, ErrStateConflict) {
		t.Fatalf("stale state write: %v", err)
	}
}
