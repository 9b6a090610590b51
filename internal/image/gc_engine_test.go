package image

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
	"github.com/berthproject/berth/internal/store"
)

// TestCollectorOnEngine: on the real engine, with a threshold just under what the removable
// images take, the collector evicts the least recently used generated images and an opted-in
// custom image, keeps the base image, the image a running container uses and the newer ones,
// and the next Ensure of an evicted generated image builds it again.
func TestCollectorOnEngine(t *testing.T) {
	eng := enginetest.Require(t)
	ctx := context.Background()
	u := enginetest.Unique(t)
	instance := "gc-test-" + u
	labels := enginetest.Labels(t)
	labels["berth.gc-test"] = u // what Cleanup sweeps: this test's objects only
	enginetest.Cleanup(t, eng, labels)
	bb := enginetest.Busybox(t, eng)
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rec := NewRecords(eng, st, instance, nil)

	// build makes a tiny image on busybox with berth's labels (and this instance's, when mine).
	build := func(tag string, extra map[string]string, mine bool) {
		t.Helper()
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+bb+"\nLABEL berth.gc-tag="+tag+"\n"), 0o644)
		l := map[string]string{}
		for k, v := range labels {
			l[k] = v
		}
		for k, v := range extra {
			l[k] = v
		}
		if mine {
			l[runtime.LabelInstance] = instance
		}
		var out bytes.Buffer
		if _, err := eng.BuildImage(ctx, runtime.BuildSpec{ContextDir: dir, Tags: []string{tag}, Labels: l}, &out); err != nil {
			t.Fatalf("build %s: %v\n%s", tag, err, out.String())
		}
		t.Cleanup(func() { eng.RemoveImage(context.Background(), tag) })
	}
	gen := map[string]string{runtime.LabelKind: runtime.KindGenerated}
	inUse, genA, genB, genC := "berth/gen:t"+u+"-use", "berth/gen:t"+u+"-a", "berth/gen:t"+u+"-b", "berth/gen:t"+u+"-c"
	prune := "berth-test/custom-" + u + ":prune"
	keep := "berth-test/custom-" + u + ":keep"
	for _, g := range []string{inUse, genA, genB, genC} {
		build(g, gen, true)
	}
	build(prune, map[string]string{LabelRetentionOmni: RetentionPruneOnCleanup}, false) // a custom image berth used
	build(keep, nil, false)                                                             // not opted in

	// A generated image the manager builds itself, so the rebuild is the real one.
	cfg := DefaultConfig()
	cfg.LogDir = t.TempDir()
	cfg.RecipeVersion = "gc-test-" + u // a hash of this run's own
	cfg.ExtraLabels = map[string]string{runtime.LabelInstance: instance}
	for k, v := range labels {
		cfg.ExtraLabels[k] = v
	}
	m := NewManager(eng, cfg, nil)
	m.SetRecords(rec)
	req := Request{Language: "shell", BaseImage: bb, InstallAPILibrary: true}
	first, err := m.Ensure(ctx, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if first.CacheHit {
		t.Fatalf("first Ensure of a hash of its own was a cache hit: %+v", first)
	}
	t.Cleanup(func() { eng.RemoveImage(context.Background(), first.Ref) })

	// A running container of this instance uses inUse.
	tl := map[string]string{runtime.LabelInstance: instance}
	for k, v := range labels {
		tl[k] = v
	}
	task, err := eng.Start(ctx, runtime.TaskSpec{Image: inUse, Labels: tl, Cmd: []string{"sleep", "300"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Remove(context.Background(), task) })

	// Last uses, oldest first: in use, base, prune, the manager's, a, keep, b, c.
	now := time.Now()
	for i, ref := range []string{inUse, bb, prune, first.Ref, genA, keep, genB, genC} {
		img, err := eng.InspectImage(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := rec.UsedAt(ctx, ref, img, now.Add(-time.Duration(10-i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	list, err := rec.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byRef := map[string]Record{}
	for _, r := range list {
		byRef[r.Ref] = r
	}
	for ref, want := range map[string]struct {
		kind             string
		removable, inUse bool
	}{
		inUse: {KindGenerated, true, true}, bb: {KindBase, false, false}, prune: {KindCustom, true, false},
		first.Ref: {KindGenerated, true, false}, genA: {KindGenerated, true, false},
		keep: {KindBase, false, false}, // FROM busybox, a base: its labels say base
		genB: {KindGenerated, true, false}, genC: {KindGenerated, true, false},
	} {
		r, ok := byRef[ref]
		if !ok {
			t.Fatalf("%s is not listed: %+v", ref, list)
		}
		if r.Kind != want.kind || r.Removable != want.removable || r.InUse != want.inUse || r.LastUsed == nil || r.Size <= 0 {
			t.Errorf("%s: kind %s removable %v in use %v last used %v size %d, want %+v", ref, r.Kind, r.Removable, r.InUse, r.LastUsed, r.Size, want)
		}
	}
	// Refused by hand too: the base image and the one in use.
	if _, err := rec.Remove(ctx, bb); !errors.Is(err, ErrBaseImage) {
		t.Errorf("remove the base image: %v, want ErrBaseImage", err)
	}
	if _, err := rec.Remove(ctx, inUse); !errors.Is(err, ErrInUse) {
		t.Errorf("remove the image in use: %v, want ErrInUse", err)
	}

	// The threshold: just under what the removable images take; evict down to what is left
	// without the three least recently used that may go.
	var total int64
	for _, ref := range []string{inUse, prune, first.Ref, genA, genB, genC} {
		total += byRef[ref].Size
	}
	low := total - byRef[prune].Size - byRef[first.Ref].Size - byRef[genA].Size
	c := NewCollector(rec, Policy{Limit: total - 1, Low: low, MinIdle: DefaultMinIdle})
	want := []string{prune, first.Ref, genA}
	dry, err := c.Run(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := evictedRefs(dry); !reflect.DeepEqual(got, want) || !dry.DryRun {
		t.Fatalf("dry run would evict %v, want %v\n%s", got, want, dry.Summary)
	}
	if len(dry.Kept) != 1 || dry.Kept[0].Ref != inUse {
		t.Errorf("dry run kept %+v, want only %s (in use)", dry.Kept, inUse)
	}
	for _, ref := range append(want, inUse, bb, keep, genB, genC) {
		if _, err := eng.InspectImage(ctx, ref); err != nil {
			t.Fatalf("a dry run removed %s: %v", ref, err)
		}
	}
	plan, err := c.Run(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := evictedRefs(plan); !reflect.DeepEqual(got, want) {
		t.Fatalf("evicted %v, want %v\n%s", got, want, plan.Summary)
	}
	for _, e := range plan.Evict {
		if e.Error != "" {
			t.Errorf("evict %s: %s", e.Ref, e.Error)
		}
		if _, err := eng.InspectImage(ctx, e.Ref); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("%s is still on the engine after its eviction: %v", e.Ref, err)
		}
	}
	for _, ref := range []string{inUse, bb, keep, genB, genC} {
		if _, err := eng.InspectImage(ctx, ref); err != nil {
			t.Errorf("%s was removed: %v", ref, err)
		}
	}
	// Under the limit now: a second run evicts nothing.
	if again, err := c.Run(ctx, false); err != nil || len(again.Evict) != 0 {
		t.Errorf("second collection: %v, evicted %v", err, evictedRefs(again))
	}

	// The next use of the evicted generated image builds it again, transparently.
	again, err := m.Ensure(ctx, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.CacheHit || again.Ref != first.Ref {
		t.Fatalf("Ensure after eviction: %+v, want a build of %s", again, first.Ref)
	}
	if _, err := eng.InspectImage(ctx, first.Ref); err != nil {
		t.Fatalf("rebuilt image: %v", err)
	}
	if hit, err := m.Ensure(ctx, req, nil); err != nil || !hit.CacheHit {
		t.Fatalf("third Ensure: %+v %v, want a cache hit", hit, err)
	}
}

func evictedRefs(p Plan) []string {
	var out []string
	for _, e := range p.Evict {
		out = append(out, e.Ref)
	}
	return out
}
