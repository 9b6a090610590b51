package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/image"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// TestImageCommands: a server with a tiny --image-disk-limit runs a job in a custom image
// labelled visokio-image-retention=prune-on-cleanup; berth image ls shows it recorded with its
// last use, berth image gc --dry-run says it would remove it and why (and removes nothing),
// berth image rm refuses a base image, and berth image gc removes it.
func TestImageCommands(t *testing.T) {
	eng := enginetest.Require(t)
	ctx := context.Background()
	bb := enginetest.Busybox(t, eng)
	u := enginetest.Unique(t)
	labels := enginetest.Labels(t)
	labels["berth.gc-test"] = u
	enginetest.Cleanup(t, eng, labels)
	custom := "berth-test/prune-" + u + ":1"
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+bb+"\nLABEL visokio-image-retention=prune-on-cleanup\n"), 0o644)
	var blog bytes.Buffer
	if _, err := eng.BuildImage(ctx, runtime.BuildSpec{ContextDir: dir, Tags: []string{custom}, Labels: labels}, &blog); err != nil {
		t.Fatalf("build %s: %v\n%s", custom, err, blog.String())
	}
	t.Cleanup(func() { eng.RemoveImage(context.Background(), custom) })

	s := startServer(t, t.TempDir(), freePort(t), "--image-disk-limit", "1MB", "--image-min-idle", "3s", "--image-gc-interval", "1h")
	if !strings.Contains(s.log.String(), "image disk limit 1.0 MiB") {
		t.Errorf("the server does not say its image disk limit:\n%s", s.log.String())
	}
	var j jobView
	specYAML := fmt.Sprintf("name: in-custom\nlanguage: shell\nimage: %s\ncode: |\n  echo hello\n", custom)
	if c := s.call("POST", "/api/v1/jobs", map[string]any{"spec": specYAML, "filename": "block.yaml"}, &j); c != 201 {
		t.Fatalf("submit: %d", c)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for j.State != "succeeded" {
		if j.State == "failed" || j.State == "cancelled" || time.Now().After(deadline) {
			t.Fatalf("job %s/%s: %s", j.State, j.Reason, j.Message)
		}
		time.Sleep(100 * time.Millisecond)
		s.call("GET", "/api/v1/jobs/"+j.ID, nil, &j)
	}
	env := []string{"BERTH_SERVER=http://" + s.addr, "BERTH_TOKEN=" + s.token}

	ls := berth(t, env, "image", "ls", "-o", "json")
	if ls.code != 0 {
		t.Fatalf("image ls: %d %s", ls.code, ls.stderr)
	}
	var list struct {
		Images        []image.Record `json:"images"`
		RemovableSize int64          `json:"removable_size"`
		Limit         int64          `json:"limit"`
	}
	if err := json.Unmarshal([]byte(ls.stdout), &list); err != nil {
		t.Fatalf("image ls -o json: %v\n%s", err, ls.stdout)
	}
	var rec *image.Record
	for i := range list.Images {
		if list.Images[i].Ref == custom {
			rec = &list.Images[i]
		}
	}
	if rec == nil || rec.Kind != image.KindCustom || !rec.Removable || rec.LastUsed == nil || rec.Size <= 0 || list.Limit != 1<<20 {
		t.Fatalf("image ls: %s is not listed as a used, removable custom image under a 1 MiB limit:\n%s", custom, ls.stdout)
	}
	if tbl := berth(t, env, "image", "ls"); tbl.code != 0 || !strings.Contains(tbl.stdout, custom) || !strings.Contains(tbl.stdout, "of the 1.0 MiB limit") {
		t.Errorf("image ls (table): %d\n%s%s", tbl.code, tbl.stdout, tbl.stderr)
	}

	// Used within --image-min-idle, it is kept: its container may be about to start.
	if fresh := berth(t, env, "image", "gc", "--dry-run"); time.Since(*rec.LastUsed) < 2*time.Second &&
		(fresh.code != 0 || !strings.Contains(fresh.stdout, "KEPT") || !strings.Contains(fresh.stdout, "less than 3s")) {
		t.Errorf("image gc --dry-run right after its use: %d\n%s%s", fresh.code, fresh.stdout, fresh.stderr)
	}
	time.Sleep(time.Until(rec.LastUsed.Add(3 * time.Second)))
	dry := berth(t, env, "image", "gc", "--dry-run")
	if dry.code != 0 || !strings.Contains(dry.stdout, "WOULD REMOVE") || !strings.Contains(dry.stdout, custom) || !strings.Contains(dry.stdout, "least recently used") {
		t.Fatalf("image gc --dry-run: %d\n%s%s", dry.code, dry.stdout, dry.stderr)
	}
	if _, err := eng.InspectImage(ctx, custom); err != nil {
		t.Fatalf("a dry run removed %s: %v", custom, err)
	}
	if rm := berth(t, env, "image", "rm", bb); rm.code == 0 || !strings.Contains(rm.stderr, "base images are never removed") {
		t.Errorf("image rm of a base image: %d\n%s%s", rm.code, rm.stdout, rm.stderr)
	}
	gc := berth(t, env, "image", "gc")
	if gc.code != 0 || !strings.Contains(gc.stdout, "REMOVED") || !strings.Contains(gc.stdout, custom) {
		t.Fatalf("image gc: %d\n%s%s", gc.code, gc.stdout, gc.stderr)
	}
	if _, err := eng.InspectImage(ctx, custom); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("%s is still there after image gc: %v", custom, err)
	}
	if _, err := eng.InspectImage(ctx, bb); err != nil {
		t.Fatalf("the base image %s is gone: %v", bb, err)
	}
}
