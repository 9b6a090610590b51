package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestAuditAppendListFiltersPurge(t *testing.T) {
	ctx := context.Background()
	st, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	entries := []AuditEntry{
		// 5.0 s and 5.5 s: a whole second sorts before its fraction (RFC 3339 without fixed
		// width would not).
		{At: base, ActorID: "tok_a", ActorName: "ann", Project: "alpha", Action: "POST /api/v1/jobs", Resource: "/api/v1/jobs", Remote: "10.0.0.1", Outcome: AuditOK, Status: 201},
		{At: base.Add(500 * time.Millisecond), ActorID: "tok_b", ActorName: "bob", Project: "beta", Action: "DELETE /api/v1/jobs/{id}", Resource: "job j1", Outcome: AuditDenied, Status: 404},
		{At: base.Add(time.Hour), ActorID: "tok_a", ActorName: "ann", Project: "alpha", Action: "job.finished", Resource: "job j2", Outcome: AuditOK, Detail: "succeeded"},
		{At: base.Add(2 * time.Hour), Action: "POST /api/v1/jobs", Resource: "/api/v1/jobs", Outcome: AuditDenied, Status: 401},
	}
	for _, e := range entries {
		if err := st.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.AppendAudit(ctx, AuditEntry{At: base, Action: "x", Outcome: "maybe"}); err == nil {
		t.Fatal("an unknown outcome was stored")
	}
	if err := st.AppendAudit(ctx, AuditEntry{At: base, Outcome: AuditOK}); err == nil {
		t.Fatal("an entry without an action was stored")
	}

	names := func(f AuditFilter) []string {
		t.Helper()
		got, err := st.ListAudit(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range got {
			out = append(out, e.Action+"@"+e.At.Format("15:04:05.0"))
		}
		return out
	}
	eq := func(what string, got []string, want ...string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: got %v, want %v", what, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: got %v, want %v", what, got, want)
			}
		}
	}
	eq("all, newest first", names(AuditFilter{}),
		"POST /api/v1/jobs@05:04:05.0", "job.finished@04:04:05.0", "DELETE /api/v1/jobs/{id}@03:04:05.5", "POST /api/v1/jobs@03:04:05.0")
	eq("project", names(AuditFilter{Project: "alpha"}), "job.finished@04:04:05.0", "POST /api/v1/jobs@03:04:05.0")
	eq("actor by name", names(AuditFilter{Actor: "bob"}), "DELETE /api/v1/jobs/{id}@03:04:05.5")
	eq("actor by id", names(AuditFilter{Actor: "tok_a"}), "job.finished@04:04:05.0", "POST /api/v1/jobs@03:04:05.0")
	eq("since", names(AuditFilter{Since: base.Add(time.Second)}), "POST /api/v1/jobs@05:04:05.0", "job.finished@04:04:05.0")
	eq("since a fraction", names(AuditFilter{Since: base.Add(time.Millisecond)}), "POST /api/v1/jobs@05:04:05.0", "job.finished@04:04:05.0", "DELETE /api/v1/jobs/{id}@03:04:05.5")
	eq("until (exclusive)", names(AuditFilter{Until: base.Add(time.Hour)}), "DELETE /api/v1/jobs/{id}@03:04:05.5", "POST /api/v1/jobs@03:04:05.0")
	eq("action", names(AuditFilter{Action: "job.finished"}), "job.finished@04:04:05.0")
	eq("limit", names(AuditFilter{Limit: 1}), "POST /api/v1/jobs@05:04:05.0")

	got, _ := st.ListAudit(ctx, AuditFilter{Action: "job.finished"})
	if e := got[0]; e.ID == 0 || e.ActorID != "tok_a" || e.ActorName != "ann" || e.Project != "alpha" || e.Resource != "job j2" ||
		e.Outcome != AuditOK || e.Detail != "succeeded" || !e.At.Equal(base.Add(time.Hour)) || e.At.Location() != time.UTC {
		t.Fatalf("entry read back as %+v", e)
	}

	n, err := st.PurgeAudit(ctx, base.Add(time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("purge: %d %v, want the 2 entries before the cut", n, err)
	}
	eq("after purge", names(AuditFilter{}), "POST /api/v1/jobs@05:04:05.0", "job.finished@04:04:05.0")
}
