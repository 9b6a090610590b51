package image

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// TestRootfsCacheConcurrentWriters runs two bootstraps' cache writes of one recipe at once
// (two managers, as two processes would be, sharing a cache dir): both get the complete
// tarball, and it is made once.
func TestRootfsCacheConcurrentWriters(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CacheDir = t.TempDir()
	hash := strings.Repeat("ab", 32)
	want := bytes.Repeat([]byte("root filesystem\n"), 4096)
	var made atomic.Int32
	produce := func(ctx context.Context, dst string) error {
		made.Add(1)
		f, err := os.Create(dst)
		if err != nil {
			return err
		}
		defer f.Close()
		// Written slowly, as tar does, so the two writers overlap.
		for i := 0; i < len(want); i += len(want) / 8 {
			if _, err := f.Write(want[i : i+len(want)/8]); err != nil {
				return err
			}
			time.Sleep(50 * time.Millisecond)
		}
		return nil
	}
	say := func(string, ...any) {}
	var wg sync.WaitGroup
	paths := make([]string, 2)
	errs := make([]error, 2)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := NewManager(nil, cfg, nil)
			paths[i], errs[i] = m.rootfsTarball(context.Background(), "shell", hash, say, produce)
		}()
	}
	wg.Wait()
	for i := range paths {
		if errs[i] != nil {
			t.Fatalf("bootstrap %d: %v", i, errs[i])
		}
		b, err := os.ReadFile(paths[i])
		if err != nil || !bytes.Equal(b, want) {
			t.Fatalf("bootstrap %d: tarball %s has %d bytes (%v), want %d", i, paths[i], len(b), err, len(want))
		}
	}
	if n := made.Load(); n != 1 {
		t.Errorf("the root filesystem was made %d times, want once (the second waits and reuses it)", n)
	}
	// Nothing temporary is left in the cache.
	ents, _ := os.ReadDir(cfg.CacheDir)
	for _, e := range ents {
		if strings.Contains(e.Name(), "partial") {
			t.Errorf("left in the cache: %s", e.Name())
		}
	}
}

// TestRootfsCacheFailedWriteLeavesNothing: a failed write leaves no tarball, and the next
// bootstrap makes it again.
func TestRootfsCacheFailedWriteLeavesNothing(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CacheDir = t.TempDir()
	m := NewManager(nil, cfg, nil)
	hash := strings.Repeat("cd", 32)
	say := func(string, ...any) {}
	_, err := m.rootfsTarball(context.Background(), "shell", hash, say, func(ctx context.Context, dst string) error {
		os.WriteFile(dst, []byte("half"), 0o644)
		return errors.New("debootstrap failed")
	})
	if err == nil {
		t.Fatal("a failed write succeeded")
	}
	if ents, _ := os.ReadDir(cfg.CacheDir); len(ents) > 0 {
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".lock") {
				t.Fatalf("left in the cache after a failure: %s", e.Name())
			}
		}
	}
	p, err := m.rootfsTarball(context.Background(), "shell", hash, say, func(ctx context.Context, dst string) error {
		return os.WriteFile(dst, []byte("whole"), 0o644)
	})
	if b, _ := os.ReadFile(p); err != nil || string(b) != "whole" || filepath.Dir(p) != cfg.CacheDir {
		t.Fatalf("retry: %s %q %v", p, b, err)
	}
}

// TestParallelBootstrapsOfOneRecipe runs two whole bootstraps of the shell recipe at once
// (two managers sharing a throwaway cache dir, as two processes would), under a throwaway
// tag: both succeed, one builds and the other reuses its image. It needs root, debootstrap
// and a Debian mirror, and takes a minute or two; -short skips it.
func TestParallelBootstrapsOfOneRecipe(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a bootstrap from scratch takes minutes")
	}
	if os.Geteuid() != 0 {
		t.Skip("bootstrapping needs root")
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		t.Skip("debootstrap is not installed")
	}
	eng := enginetest.Require(t)
	r := recipes["shell"]
	r.ref = "berth/test-bootstrap-shell:" + uniq()
	t.Cleanup(func() { eng.RemoveImage(context.Background(), r.ref) })
	cfg := DefaultConfig()
	cfg.CacheDir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	type result struct {
		img   runtime.Image
		built bool
		err   error
		log   bytes.Buffer
	}
	res := make([]*result, 2)
	var wg sync.WaitGroup
	for i := range res {
		res[i] = &result{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := NewManager(eng, cfg, nil)
			res[i].img, res[i].built, res[i].err = m.doBootstrap(ctx, r, &res[i].log)
		}()
	}
	wg.Wait()
	built := 0
	for i, x := range res {
		if x.err != nil {
			t.Fatalf("bootstrap %d: %v\n%s", i, x.err, x.log.String())
		}
		if x.built {
			built++
		}
	}
	if built != 1 || res[0].img.ID != res[1].img.ID {
		t.Fatalf("built %d times, images %s and %s; want one build reused by the other", built, res[0].img.ID, res[1].img.ID)
	}
	// The intermediate root filesystem images are gone.
	imgs, err := eng.ListImages(ctx, map[string]string{runtime.LabelKind: runtime.KindBase})
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		for _, tag := range img.Tags {
			if strings.HasPrefix(tag, "berth/rootfs:") && strings.Contains(res[0].log.String()+res[1].log.String(), tag) {
				t.Errorf("intermediate image left: %s", tag)
			}
		}
	}
}
