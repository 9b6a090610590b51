package image

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Policy is the disk threshold of the image collector.
type Policy struct {
	// Limit is the most the removable images may take, in bytes (server --image-disk-limit,
	// env BERTH_IMAGE_DISK_LIMIT; default 20 GB). 0 turns the collector off.
	Limit int64
	// Low is where a collection stops: past Limit, images are evicted until the removable
	// images take at most Low bytes (server --image-disk-low, a fraction of the limit;
	// default 0.8).
	Low int64
	// MinIdle keeps an image used less than this long ago, so an image Ensure just handed
	// out is not evicted before its container starts (default 5 minutes).
	MinIdle time.Duration
}

// DefaultMinIdle is Policy.MinIdle's default.
const DefaultMinIdle = 5 * time.Minute

// Eviction is an image the collector removes (or, on a dry run, would remove), and why.
type Eviction struct {
	Record
	Reason string `json:"reason"`
	// Error is why the removal failed (the engine refused, a container uses it).
	Error string `json:"error,omitempty"`
}

// Plan is what a collection decided.
type Plan struct {
	// Total is the estimated size of the removable images before, After once the evictions
	// are done (sizes are the engine's, which counts a layer shared by two images in both).
	Total int64 `json:"total"`
	After int64 `json:"after"`
	Limit int64 `json:"limit"`
	Low   int64 `json:"low"`
	// Evict lists the images chosen, least recently used first.
	Evict []Eviction `json:"evict"`
	// Kept says why removable images were passed over (in use, pinned, used too recently).
	Kept   []Eviction `json:"kept,omitempty"`
	DryRun bool       `json:"dry_run"`
	// Summary is one plain sentence of what happened.
	Summary string `json:"summary"`
}

// Choose picks the images to evict: when the removable images take more than p.Limit, the
// least recently used removable ones, skipping those in use, pinned or used within
// p.MinIdle, until they take at most p.Low. Base images are never chosen. Two tags of one
// image count its size once, and evicting a tag frees it only with the image's last tag.
func Choose(recs []Record, p Policy, now time.Time) Plan {
	plan := Plan{Limit: p.Limit, Low: p.Low, Evict: []Eviction{}}
	tags := map[string]int{} // removable tags left per image ID
	sized := map[string]bool{}
	for _, r := range recs {
		if !r.Removable || r.Kind == KindBase {
			continue
		}
		tags[r.ID]++
		if !sized[r.ID] {
			sized[r.ID] = true
			plan.Total += r.Size
		}
	}
	plan.After = plan.Total
	if p.Limit <= 0 {
		plan.Summary = "no image disk limit set: nothing is evicted"
		return plan
	}
	if plan.Total <= p.Limit {
		plan.Summary = fmt.Sprintf("removable images take %s, under the limit of %s: nothing to evict", HumanSize(plan.Total), HumanSize(p.Limit))
		return plan
	}
	cand := make([]Record, 0, len(recs))
	for _, r := range recs {
		if r.Removable && r.Kind != KindBase {
			cand = append(cand, r)
		}
	}
	sort.SliceStable(cand, func(i, j int) bool {
		if a, b := cand[i].used(), cand[j].used(); !a.Equal(b) {
			return a.Before(b)
		}
		return cand[i].Ref < cand[j].Ref
	})
	for _, r := range cand {
		if plan.After <= p.Low {
			break
		}
		switch {
		case r.InUse:
			plan.Kept = append(plan.Kept, Eviction{Record: r, Reason: "in use by a running container"})
			continue
		case r.Keep != "":
			plan.Kept = append(plan.Kept, Eviction{Record: r, Reason: r.Keep})
			continue
		case p.MinIdle > 0 && now.Sub(r.used()) < p.MinIdle:
			plan.Kept = append(plan.Kept, Eviction{Record: r, Reason: fmt.Sprintf("used %s ago, less than %s", ago(now, r.used()), p.MinIdle)})
			continue
		}
		tags[r.ID]--
		freed := int64(0)
		if tags[r.ID] == 0 {
			freed = r.Size
		}
		plan.Evict = append(plan.Evict, Eviction{Record: r, Reason: fmt.Sprintf("least recently used (last used %s, %s); removable images take %s, over the limit of %s: evicting down to %s",
			lastUsedText(now, r), HumanSize(r.Size), HumanSize(plan.After), HumanSize(p.Limit), HumanSize(p.Low))})
		plan.After -= freed
	}
	plan.Summary = fmt.Sprintf("removable images take %s, over the limit of %s: %d to evict, leaving %s", HumanSize(plan.Total), HumanSize(p.Limit), len(plan.Evict), HumanSize(plan.After))
	if plan.After > p.Low {
		plan.Summary += fmt.Sprintf(" (still above %s: the rest is in use, pinned or used too recently)", HumanSize(p.Low))
	}
	return plan
}

func lastUsedText(now time.Time, r Record) string {
	if r.LastUsed == nil {
		return "never recorded, created " + ago(now, r.Created) + " ago"
	}
	return ago(now, *r.LastUsed) + " ago"
}

func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// HumanSize writes bytes in binary units (12.3 MiB), as --image-disk-limit reads them.
func HumanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Collector evicts images past the disk threshold. Safe for concurrent use; one collection
// runs at a time.
type Collector struct {
	rec    *Records
	policy Policy
	log    *slog.Logger
	mu     sync.Mutex // one collection at a time
	kick   chan struct{}
}

// NewCollector makes a collector over an instance's image records.
func NewCollector(rec *Records, p Policy) *Collector {
	return &Collector{rec: rec, policy: p, log: rec.log, kick: make(chan struct{}, 1)}
}

// List is the image records' list (Records.List).
func (c *Collector) List(ctx context.Context) ([]Record, error) { return c.rec.List(ctx) }

// Remove removes one image by hand (Records.Remove), never while a collection runs.
func (c *Collector) Remove(ctx context.Context, ref string) (Record, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec.Remove(ctx, ref)
}

// Policy returns the collector's threshold.
func (c *Collector) Policy() Policy { return c.policy }

// Run makes one collection: it lists the images, chooses, and (unless dryRun) removes the
// chosen ones, least recently used first. An image the engine refuses to remove (a container
// started from it meanwhile) is reported with its error and skipped.
func (c *Collector) Run(ctx context.Context, dryRun bool) (Plan, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	recs, err := c.rec.List(ctx)
	if err != nil {
		return Plan{}, fmt.Errorf("image collection: %w", err)
	}
	plan := Choose(recs, c.policy, c.rec.now())
	plan.DryRun = dryRun
	if dryRun || len(plan.Evict) == 0 {
		return plan, nil
	}
	var failed int
	for i := range plan.Evict {
		e := &plan.Evict[i]
		if err := c.rec.remove(ctx, e.Record); err != nil {
			e.Error = err.Error()
			failed++
			plan.After += e.Size
			c.log.Warn("image collection: remove", "image", e.Ref, "err", err)
			continue
		}
		c.log.Info("image evicted", "image", e.Ref, "kind", e.Kind, "size", e.Size, "reason", e.Reason)
	}
	if failed > 0 {
		plan.Summary += fmt.Sprintf("; %d could not be removed (see error)", failed)
	}
	return plan, nil
}

// Kick asks for a collection soon (after a build); kicks while one is pending coalesce.
func (c *Collector) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Loop collects at start, on every kick and every interval, until ctx ends.
func (c *Collector) Loop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if plan, err := c.Run(ctx, false); err != nil && !errors.Is(err, context.Canceled) {
			c.log.Warn("image collection", "err", err)
		} else if err == nil && len(plan.Evict) > 0 {
			c.log.Info("image collection", "summary", plan.Summary)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
		}
	}
}
