// Package jobtest is the shared harness of the job tests: a job manager of its own instance,
// store and data dir on the real engine, with the executors a test package gives it. The job
// core's tests, the block tests and the component tests build on it.
package jobtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/image"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
	"github.com/berthproject/berth/internal/spec"
	"github.com/berthproject/berth/internal/store"
)

// Executors makes the executors a harness's manager runs jobs with, once its store exists and
// the test changed its configuration.
type Executors func(h *Harness) map[string]job.Executor

// Harness is a job manager on a real engine, running blocks in the test busybox image.
type Harness struct {
	M        *job.Manager
	Eng      *docker.Engine
	St       *store.Store
	Cfg      job.Config
	Img      string
	Instance string
	// ImageConfig, when set before Start, configures the image manager (a test's package
	// index); nil: image.DefaultConfig().
	ImageConfig *image.Config
}

// New is a started harness on the machine's engine; everything its jobs create is removed when
// the test ends.
func New(t *testing.T, mutate func(*job.Config), ex Executors) *Harness {
	t.Helper()
	eng := enginetest.Require(t)
	img := enginetest.Busybox(t, eng)
	instance := Instance()
	enginetest.Cleanup(t, eng, map[string]string{runtime.LabelTest: "1", runtime.LabelInstance: instance})
	return On(t, eng, img, instance, mutate, ex)
}

// Sealer is a sealer of a fresh random key, as the server's store has one (store.SetSealer).
func Sealer(t *testing.T) *auth.Sealer {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	s, err := auth.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Instance is a fresh instance id for a test's manager.
func Instance() string {
	var b [4]byte
	rand.Read(b[:])
	return "test-" + hex.EncodeToString(b[:])
}

// On is a started job manager of its own instance, store and data dir on eng, whose blocks
// run in img.
func On(t *testing.T, eng *docker.Engine, img, instance string, mutate func(*job.Config), ex Executors) *Harness {
	t.Helper()
	dir := t.TempDir()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(dir, "berth.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st.SetSealer(Sealer(t))
	cfg := job.DefaultConfig(filepath.Join(dir, "data"))
	cfg.Instance = instance
	cfg.ExtraLabels = enginetest.Labels(t)
	cfg.StopGrace = time.Second
	cfg.ShareRoots = []string{filepath.Join(dir, "share")}
	os.MkdirAll(cfg.ShareRoots[0], 0o755)
	h := &Harness{Eng: eng, St: st, Img: img, Instance: instance}
	if mutate != nil {
		mutate(&cfg)
	}
	if ex != nil {
		cfg.Executors = ex(h)
	}
	h.Cfg = cfg
	h.Start(t)
	return h
}

// Start starts a manager of h's configuration (again, after a restart) as h.M.
func (h *Harness) Start(t *testing.T) {
	t.Helper()
	icfg := image.DefaultConfig()
	if h.ImageConfig != nil {
		icfg = *h.ImageConfig
	}
	images := image.NewManager(h.Eng, icfg, nil)
	m, err := job.New(h.Cfg, h.St, h.Eng, images, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.M = m
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		m.Close(ctx)
	})
}

// Block is a shell block running code in the busybox image.
func (h *Harness) Block(code string) spec.Block {
	return spec.Block{Name: "t", Language: spec.LangShell, Image: h.Img, Code: code}
}

// Run submits b and waits for its end; it returns the job and its stdout+stderr.
func (h *Harness) Run(t *testing.T, b spec.Block) (job.Job, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	j, err := h.M.Submit(ctx, job.Submission{Block: b, BaseDir: h.Cfg.ShareRoots[0], Owner: "tester"})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	j, err = h.M.Wait(ctx, j.ID)
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	return j, h.Output(t, j.ID, "")
}

// Output is the job's stored output of one stream ("" for stdout+stderr).
func (h *Harness) Output(t *testing.T, id, stream string) string {
	t.Helper()
	var sb strings.Builder
	err := h.M.Logs(context.Background(), id, false, func(c job.LogChunk) error {
		if (stream == "" && c.Stream != "system") || c.Stream == stream {
			sb.WriteString(c.Text)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

// Containers is how many containers of the job exist.
func (h *Harness) Containers(t *testing.T, id string) int {
	t.Helper()
	ts, err := h.Eng.List(context.Background(), map[string]string{runtime.LabelJob: id})
	if err != nil {
		t.Fatal(err)
	}
	return len(ts)
}

// ProbeValues reads the key=value lines of a probe's output.
func ProbeValues(out string) map[string]string {
	v := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, val, ok := strings.Cut(line, "="); ok {
			v[k] = strings.TrimSpace(val)
		}
	}
	return v
}
