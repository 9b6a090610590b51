package image

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// TestBootstrapFromScratch runs the whole bootstrap (debootstrap into an empty cache, import,
// build) for the languages in BERTH_BOOTSTRAP_TIMING (e.g. "python,shell,r") under a throwaway
// tag, so the real base images are left alone. It takes minutes; off by default.
func TestBootstrapFromScratch(t *testing.T) {
	langs := os.Getenv("BERTH_BOOTSTRAP_TIMING")
	if langs == "" {
		t.Skip("set BERTH_BOOTSTRAP_TIMING=python,shell,r to time a bootstrap from scratch")
	}
	eng := enginetest.Require(t)
	for _, lang := range strings.Split(langs, ",") {
		t.Run(lang, func(t *testing.T) {
			r, ok := recipes[lang]
			if !ok {
				t.Fatalf("unknown language %s", lang)
			}
			r.ref = "berth/timing-" + lang + ":" + uniq()
			cfg := DefaultConfig()
			cfg.CacheDir = t.TempDir()
			m := NewManager(eng, cfg, nil)
			var mu sync.Mutex
			var lines []string
			progress := writerFunc(func(p []byte) (int, error) {
				mu.Lock()
				defer mu.Unlock()
				lines = append(lines, strings.Split(strings.TrimRight(string(p), "\n"), "\n")...)
				return len(p), nil
			})
			t0 := time.Now()
			img, built, err := m.doBootstrap(context.Background(), r, progress)
			t.Cleanup(func() { eng.RemoveImage(context.Background(), r.ref) })
			if err != nil {
				t.Fatalf("%v\n%s", err, strings.Join(lines, "\n"))
			}
			if !built || img.Labels["berth.recipe-hash"] == "" {
				t.Fatalf("built %v, labels %v", built, img.Labels)
			}
			for _, l := range lines {
				if !strings.Contains(l, "debootstrap |") {
					t.Log(l)
				}
			}
			t.Logf("TIMING %s bootstrap from scratch: %s (image %d MB)", lang, time.Since(t0).Round(time.Second), img.Size>>20)
		})
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
