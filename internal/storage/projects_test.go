package storage

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/store"
)

// TestBucketsBelongToProjects: a bucket is its creator's project's; its id stays server-wide;
// a load for another project into it is refused (read-only when shared); sharing and
// unsharing; usage counts a project's rows and files only, and the quota refuses growth.
func TestBucketsBelongToProjects(t *testing.T) {
	s := newStorage(t)
	ctx := context.Background()
	for _, p := range []string{"p1", "p2"} {
		if err := s.st.CreateProject(ctx, store.Project{ID: p}); err != nil {
			t.Fatal(err)
		}
	}
	load(t, s, "in.c-a.t", "id\n1\n", LoadOptions{Project: "p1"})
	if tb, _ := s.GetTable(ctx, s.DB(), "in.c-a.t"); tb.Project != "p1" {
		t.Fatalf("table's project: %q", tb.Project)
	}
	if err := s.CreateBucket(ctx, s.DB(), "p1", "in.c-a"); err != nil {
		t.Fatalf("again in its project: %v", err)
	}
	err := s.CreateBucket(ctx, s.DB(), "p2", "in.c-a")
	var fe *ForeignBucketError
	if !errors.As(err, &fe) || !errors.Is(err, ErrConflict) || err.Error() != "bucket id in.c-a is in use by another project" {
		t.Fatalf("p2 takes p1's id: %v", err)
	}
	if _, err := s.ShareBucket(ctx, "in.c-a", "p1"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("share with its own project: %v", err)
	}
	if b, err := s.ShareBucket(ctx, "in.c-a", "p2"); err != nil || strings.Join(b.SharedWith, ",") != "p2" {
		t.Fatalf("share: %+v %v", b, err)
	}
	err = s.Load(ctx, s.DB(), "in.c-a.t", []string{"id"}, [][]string{{"2"}}, LoadOptions{Project: "p2"})
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "read-only here") {
		t.Fatalf("p2 loads into the shared bucket: %v", err)
	}
	if b, err := s.UnshareBucket(ctx, "in.c-a", "p2"); err != nil || len(b.SharedWith) != 0 {
		t.Fatalf("unshare: %+v %v", b, err)
	}
	if _, err := s.UnshareBucket(ctx, "in.c-a", "p2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unshare twice: %v", err)
	}

	// Usage: the stored row ["1"] is 5 bytes; p2's file does not count for p1.
	if _, err := s.Upload(ctx, "p2", "f", strings.NewReader("12345678"), nil); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.ProjectUsage(ctx, s.DB(), "p1"); u != 5 {
		t.Fatalf("p1 usage %d, want 5", u)
	}
	if u, _ := s.ProjectUsage(ctx, s.DB(), "p2"); u != 8 {
		t.Fatalf("p2 usage %d, want 8", u)
	}
	limit := int64(10)
	s.st.SetProjectQuotas(ctx, "p1", nil, &limit)
	_, err = s.Upload(ctx, "p1", "g", strings.NewReader("123456"), nil)
	var qe *QuotaError
	if !errors.As(err, &qe) || qe.Usage != 5 || qe.Would != 11 || qe.Limit != 10 {
		t.Fatalf("upload over the quota: %v", err)
	}
	if fs, _ := s.Files(ctx, FileQuery{Project: "p1"}); len(fs) != 0 {
		t.Fatalf("kept: %+v", fs)
	}
	// Shrinking is allowed even over a quota lowered under the usage.
	limit = 1
	s.st.SetProjectQuotas(ctx, "p1", nil, &limit)
	err = s.InQuota(ctx, "p1", func(q Q) error {
		return s.Load(ctx, q, "in.c-a.t", []string{"id"}, [][]string{}, LoadOptions{Project: "p1"})
	})
	if err != nil {
		t.Fatalf("emptying a table over the quota: %v", err)
	}
}
