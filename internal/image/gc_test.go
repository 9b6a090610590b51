package image

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestChooseLRU: the collector's choice over records alone. Past the limit it evicts the
// least recently used removable images until it reaches the low watermark, and never a base
// image, one in use, a pinned one or one used within MinIdle.
func TestChooseLRU(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { x := now.Add(-d); return &x }
	rec := func(ref, id, kind string, size int64, used *time.Time) Record {
		return Record{Ref: ref, ID: id, Kind: kind, Size: size, LastUsed: used, Created: now.Add(-100 * time.Hour),
			Removable: Removable(kind, nil)}
	}
	base := rec("berth/python:3.11", "i-base", KindBase, 500, ago(50*time.Hour))
	inUse := rec("berth/gen:inuse", "i-inuse", KindGenerated, 100, ago(40*time.Hour))
	inUse.InUse = true
	pinned := rec("berth/component-c:1", "i-pin", KindComponent, 100, ago(35*time.Hour))
	pinned.Keep = "component c runs it"
	custom := rec("my/custom:1", "i-custom", KindCustom, 100, ago(30*time.Hour)) // not opted in
	pruned := rec("my/prune:1", "i-prune", KindCustom, 100, ago(20*time.Hour))
	pruned.Labels = map[string]string{LabelRetentionOmni: RetentionPruneOnCleanup}
	pruned.Removable = Removable(KindCustom, pruned.Labels)
	genA := rec("berth/gen:a", "i-a", KindGenerated, 100, ago(10*time.Hour))
	svc := rec("berth/svc-web:1", "i-svc", KindService, 100, ago(5*time.Hour))
	genB := rec("berth/gen:b", "i-b", KindGenerated, 100, ago(3*time.Hour))
	genB2 := rec("berth/gen:b2", "i-b", KindGenerated, 100, ago(2*time.Hour)) // a second tag of i-b
	fresh := rec("berth/gen:fresh", "i-fresh", KindGenerated, 100, ago(time.Minute))
	// Shuffled: Choose orders by last use itself.
	recs := []Record{fresh, genB2, svc, base, genA, custom, pruned, pinned, inUse, genB}

	refs := func(es []Eviction) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Ref)
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		p         Policy
		evict     []string
		kept      []string
		total     int64
		after     int64
		inSummary string
	}{
		// Removable: inuse, pin, prune, a, svc, b (two tags, counted once), fresh = 700.
		{name: "under the limit", p: Policy{Limit: 700, Low: 500}, total: 700, after: 700, inSummary: "under the limit"},
		{name: "no limit", p: Policy{}, total: 700, after: 700, inSummary: "no image disk limit"},
		{name: "down to the low watermark", p: Policy{Limit: 650, Low: 500, MinIdle: 5 * time.Minute},
			evict: []string{"my/prune:1", "berth/gen:a"}, kept: []string{"berth/gen:inuse", "berth/component-c:1"}, total: 700, after: 500},
		{name: "a second tag frees nothing until the last goes", p: Policy{Limit: 100, Low: 300, MinIdle: 5 * time.Minute},
			evict: []string{"my/prune:1", "berth/gen:a", "berth/svc-web:1", "berth/gen:b", "berth/gen:b2"},
			kept:  []string{"berth/gen:inuse", "berth/component-c:1"}, total: 700, after: 300},
		{name: "never below what is in use, pinned or fresh", p: Policy{Limit: 100, Low: 0, MinIdle: 5 * time.Minute},
			evict: []string{"my/prune:1", "berth/gen:a", "berth/svc-web:1", "berth/gen:b", "berth/gen:b2"},
			kept:  []string{"berth/gen:inuse", "berth/component-c:1", "berth/gen:fresh"}, total: 700, after: 300, inSummary: "still above"},
		{name: "MinIdle 0 takes a fresh image too", p: Policy{Limit: 100, Low: 0},
			evict: []string{"my/prune:1", "berth/gen:a", "berth/svc-web:1", "berth/gen:b", "berth/gen:b2", "berth/gen:fresh"},
			kept:  []string{"berth/gen:inuse", "berth/component-c:1"}, total: 700, after: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := Choose(recs, tc.p, now)
			if got := refs(plan.Evict); !reflect.DeepEqual(got, tc.evict) {
				t.Errorf("evict %v, want %v", got, tc.evict)
			}
			if got := refs(plan.Kept); !reflect.DeepEqual(got, tc.kept) {
				t.Errorf("kept %v, want %v", got, tc.kept)
			}
			if plan.Total != tc.total || plan.After != tc.after {
				t.Errorf("total %d after %d, want %d and %d", plan.Total, plan.After, tc.total, tc.after)
			}
			if !strings.Contains(plan.Summary, tc.inSummary) {
				t.Errorf("summary %q, want it to say %q", plan.Summary, tc.inSummary)
			}
			for _, e := range plan.Evict {
				if e.Kind == KindBase || e.InUse || e.Keep != "" || !strings.Contains(e.Reason, "least recently used") {
					t.Errorf("evicts %s (%s, in use %v, keep %q): %s", e.Ref, e.Kind, e.InUse, e.Keep, e.Reason)
				}
			}
		})
	}
}

func TestKindAndRemovable(t *testing.T) {
	for _, tc := range []struct {
		ref       string
		labels    map[string]string
		kind      string
		removable bool
	}{
		{"berth/python:3.11", nil, KindBase, false},
		{"berth/r:4.2", map[string]string{LabelRetention: RetentionPruneOnCleanup}, KindBase, false},
		{"x/y:1", map[string]string{"berth.kind": "base"}, KindBase, false},
		// FROM a base runtime (its labels inherited) and opted in: a custom image.
		{"x/y:2", map[string]string{"berth.kind": "base", LabelRetention: RetentionPruneOnCleanup}, KindCustom, true},
		{"berth/gen:0123", nil, KindGenerated, true},
		{"anything:1", map[string]string{"berth.kind": "generated"}, KindGenerated, true},
		{"berth/svc-web:abc", nil, KindService, true},
		{"berth/component-ex:abc", map[string]string{"berth.kind": "component"}, KindComponent, true},
		{"acme/tool:2", nil, KindCustom, false},
		{"acme/tool:3", map[string]string{LabelRetention: RetentionPruneOnCleanup}, KindCustom, true},
		{"acme/tool:4", map[string]string{LabelRetentionOmni: RetentionPruneOnCleanup}, KindCustom, true},
		{"acme/tool:5", map[string]string{LabelRetentionOmni: "keep"}, KindCustom, false},
	} {
		k := KindOf(tc.ref, tc.labels)
		if k != tc.kind || Removable(k, tc.labels) != tc.removable {
			t.Errorf("%s %v: kind %s removable %v, want %s %v", tc.ref, tc.labels, k, Removable(k, tc.labels), tc.kind, tc.removable)
		}
	}
}
