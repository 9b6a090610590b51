// Package bench measures berth's own overhead against a baseline taken in the same run:
// the job pipeline against raw Engine API calls on the same image with the same security
// options (P1), and the generated-image cache hit path (P3). Results are ratios and
// percentiles, printed as the last lines so scripts can read them.
package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/berthproject/berth/internal/block"
	"github.com/berthproject/berth/internal/image"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/pkgindex"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker"
	"github.com/berthproject/berth/internal/spec"
	"github.com/berthproject/berth/internal/store"
)

// Config sets the benchmark's sizes.
type Config struct {
	Jobs        int // P1: sequential jobs each side (default 30)
	EnsureCalls int // P3: ensure calls on a built image (default 200)
	Warmup      int // untimed runs before each side (default 2)
}

// DefaultConfig is the sizes.
func DefaultConfig() Config { return Config{Jobs: 30, EnsureCalls: 200, Warmup: 2} }

// Result holds the figures.
type Result struct {
	BerthP50, RawP50 time.Duration
	// StageP50 is the median of each pipeline stage across berth's jobs: where the time goes.
	StageP50        map[string]time.Duration
	EnsureP50       time.Duration
	EnsureP99       time.Duration
	OverheadRatio   float64
	EnsureCacheHits int
}

// Run runs P1 and P3 on eng, writing progress to w. dataDir is a scratch folder.
func Run(ctx context.Context, eng *docker.Engine, cfg Config, dataDir string, w io.Writer) (Result, error) {
	var res Result
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.OpenSQLite(ctx, filepath.Join(dataDir, "bench.db"))
	if err != nil {
		return res, err
	}
	defer st.Close()

	ix := pkgindex.NewIndex()
	if err := ix.AddWheel("berth-bench-dep", "1.0.0", map[string][]byte{
		"berth_bench_dep/__init__.py": []byte("VALUE = 42\n"),
	}); err != nil {
		return res, err
	}
	idxURL, stopIdx, err := pkgindex.Serve(ctx, "127.0.0.1:0", ix)
	if err != nil {
		return res, err
	}
	defer stopIdx()

	icfg := image.DefaultConfig()
	icfg.LogDir = filepath.Join(dataDir, "image-logs")
	icfg.PipIndexURL = idxURL + "/simple/"
	images := image.NewManager(eng, icfg, log)

	shellRef, err := image.BaseRef(spec.LangShell)
	if err != nil {
		return res, err
	}
	if _, err := eng.InspectImage(ctx, shellRef); err != nil {
		return res, fmt.Errorf("P1 needs the shell base image %s: run `berth runtime bootstrap shell` (%w)", shellRef, err)
	}

	// ---- P1: job pipeline vs raw engine calls ----
	jcfg := job.DefaultConfig(dataDir)
	jcfg.Workers = 1
	jcfg.Instance = "bench"
	jcfg.Executors = map[string]job.Executor{job.KindBlock: block.New()}
	m, err := job.New(jcfg, st, eng, images, log)
	if err != nil {
		return res, err
	}
	if err := m.Start(ctx); err != nil {
		return res, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		m.Close(cctx)
	}()
	blk := spec.Block{Name: "bench-trivial", Language: spec.LangShell, Code: "echo ok\n"}

	runBerth := func() (time.Duration, job.Job, error) {
		t0 := time.Now()
		j, err := m.Submit(ctx, job.Submission{Block: blk, Owner: "bench"})
		if err != nil {
			return 0, j, err
		}
		j, err = m.Wait(ctx, j.ID)
		d := time.Since(t0)
		if err == nil && j.State != job.StateSucceeded {
			err = fmt.Errorf("bench job %s ended %s/%s: %s", j.ID, j.State, j.Reason, j.Message)
		}
		return d, j, err
	}
	// The raw side: the same image, command, mounts and security options, straight to the
	// engine: create+start, wait, remove.
	rawTask := func() (runtime.TaskSpec, func(), error) {
		dir, err := os.MkdirTemp(dataDir, "raw-")
		if err != nil {
			return runtime.TaskSpec{}, nil, err
		}
		// Like the pipeline's workspace: readable and writable by the container's user.
		if err := os.Chmod(dir, 0o777); err != nil {
			return runtime.TaskSpec{}, nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "main.sh"), []byte("echo ok\n"), 0o644); err != nil {
			return runtime.TaskSpec{}, nil, err
		}
		t := block.TaskFor(jcfg, blk, shellRef, "bench-raw", dir, dir)
		return t, func() { os.RemoveAll(dir) }, nil
	}
	runRaw := func() (time.Duration, error) {
		t, done, err := rawTask()
		if err != nil {
			return 0, err
		}
		defer done()
		t0 := time.Now()
		err = eng.RawRun(ctx, t)
		return time.Since(t0), err
	}

	fmt.Fprintf(w, "P1: %d sequential trivial shell jobs through berth, then %d raw engine runs\n", cfg.Jobs, cfg.Jobs)
	for i := 0; i < cfg.Warmup; i++ {
		if _, _, err := runBerth(); err != nil {
			return res, err
		}
		if _, err := runRaw(); err != nil {
			return res, err
		}
	}
	var berthD, rawD []time.Duration
	stages := map[string][]time.Duration{}
	// Interleave the two sides so drift on a shared machine hits both alike.
	for i := 0; i < cfg.Jobs; i++ {
		d, j, err := runBerth()
		if err != nil {
			return res, err
		}
		berthD = append(berthD, d)
		for _, t := range j.Timings {
			stages[t.Stage] = append(stages[t.Stage], time.Duration(t.DurationMS*float64(time.Millisecond)))
		}
		rd, err := runRaw()
		if err != nil {
			return res, err
		}
		rawD = append(rawD, rd)
	}
	res.BerthP50, res.RawP50 = pct(berthD, 50), pct(rawD, 50)
	res.OverheadRatio = float64(res.BerthP50) / float64(res.RawP50)
	res.StageP50 = map[string]time.Duration{}
	for s, ds := range stages {
		res.StageP50[s] = pct(ds, 50)
	}

	// ---- P3: ensure on an already-built generated image ----
	req := image.Request{Language: spec.LangPython, Dependencies: []string{"berth-bench-dep==1.0.0"}}
	if _, err := images.HasBase(ctx, spec.LangPython); err != nil {
		return res, err
	}
	fmt.Fprintf(w, "P3: ensure the generated image once (builds if absent), then %d timed cache-hit ensures\n", cfg.EnsureCalls)
	first, err := images.Ensure(ctx, req, io.Discard)
	if err != nil {
		return res, fmt.Errorf("P3 first ensure (needs `berth runtime bootstrap python`): %w", err)
	}
	var ens []time.Duration
	for i := 0; i < cfg.EnsureCalls; i++ {
		t0 := time.Now()
		r, err := images.Ensure(ctx, req, io.Discard)
		ens = append(ens, time.Since(t0))
		if err != nil {
			return res, err
		}
		if r.CacheHit {
			res.EnsureCacheHits++
		}
		if r.ImageID != first.ImageID {
			return res, fmt.Errorf("P3: ensure returned image %s, first was %s", r.ImageID, first.ImageID)
		}
	}
	res.EnsureP50, res.EnsureP99 = pct(ens, 50), pct(ens, 99)
	// The benchmark's own image is not kept.
	if err := eng.RemoveImage(ctx, first.Ref); err != nil {
		fmt.Fprintf(w, "note: could not remove %s: %v\n", first.Ref, err)
	}
	return res, nil
}

// pct returns the p-th percentile (nearest rank) of ds.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(p/100*float64(len(s))+0.999999) - 1
	if rank < 0 {
		rank = 0
	}
	if rank >= len(s) {
		rank = len(s) - 1
	}
	return s[rank]
}

// ms formats a duration in milliseconds with two decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

// Print writes the report; the P lines come last.
func Print(w io.Writer, r Result) {
	fmt.Fprintln(w, "where berth's time goes (p50 per stage):")
	names := make([]string, 0, len(r.StageP50))
	for s := range r.StageP50 {
		names = append(names, s)
	}
	sort.Strings(names)
	for _, s := range names {
		fmt.Fprintf(w, "  %-10s %8s ms\n", s, ms(r.StageP50[s]))
	}
	fmt.Fprintf(w, "P1 job_overhead_ratio=%.3f berth_p50_ms=%s raw_p50_ms=%s\n", r.OverheadRatio, ms(r.BerthP50), ms(r.RawP50))
	fmt.Fprintf(w, "P3 cache_hit_p99_ms=%s cache_hit_p50_ms=%s\n", ms(r.EnsureP99), ms(r.EnsureP50))
}
