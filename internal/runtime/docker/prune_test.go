package docker_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// TestPruneDanglingRemovesWhatAFailedBuildLeft: a build that fails after a finished step
// leaves that step's image untagged; PruneDangling removes it.
func TestPruneDanglingRemovesWhatAFailedBuildLeft(t *testing.T) {
	e := enginetest.Require(t)
	img := enginetest.Busybox(t, e)
	ctx := context.Background()
	u := enginetest.Unique(t)
	l := labels(t)
	enginetest.Cleanup(t, e, l)
	// A base of the test's own, so only what this test's build leaves is pruned.
	baseDir := t.TempDir()
	os.WriteFile(filepath.Join(baseDir, "Dockerfile"), []byte("FROM "+img+"\nLABEL berth.test-base="+u+"\n"), 0o644)
	base, err := e.BuildImage(ctx, runtime.BuildSpec{ContextDir: baseDir, Tags: []string{"berth/test-prune-base:" + u}, Labels: l}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	df := "FROM berth/test-prune-base:" + u + "\nRUN echo " + u + " > /tmp/step\nRUN exit 3\n"
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644)
	if _, err := e.BuildImage(ctx, runtime.BuildSpec{ContextDir: dir, Tags: []string{"berth/test-prune:" + u}, Labels: enginetest.Labels(t)}, io.Discard); err == nil {
		t.Fatal("the build did not fail")
	}
	left := func() []string {
		ids, err := e.DanglingChildren(ctx, base.ID)
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	before := left()
	if len(before) == 0 {
		t.Fatal("the failed build left no image of its finished step")
	}
	if _, err := e.PruneDangling(ctx, base.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range before {
		if _, err := e.InspectImage(ctx, id); err == nil {
			t.Errorf("image %s is still there", id)
		}
	}
}
