package job

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/spec"
)

// TestDiskUsageCountsBlocks: usage is what the files take on disk (allocated blocks), not
// their apparent size; links are not followed and a hard-linked file counts once.
func TestDiskUsageCountsBlocks(t *testing.T) {
	dir := t.TempDir()
	job := filepath.Join(dir, "job")
	os.MkdirAll(filepath.Join(job, "out", "sub"), 0o755)
	empty, err := diskUsage(job)
	if err != nil {
		t.Fatal(err)
	}

	// 1 MiB of real data counts at least 1 MiB.
	if err := os.WriteFile(filepath.Join(job, "out", "sub", "real"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	// A sparse file of 1 GiB apparent size with 4 KiB written counts its blocks only.
	f, err := os.Create(filepath.Join(job, "out", "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(1 << 30)
	f.WriteAt(make([]byte, 4096), 1<<29)
	f.Close()
	// A hard link to the real file takes no more space.
	if err := os.Link(filepath.Join(job, "out", "sub", "real"), filepath.Join(job, "out", "hard")); err != nil {
		t.Fatal(err)
	}
	// Links to a big file and a big folder outside the job are not followed.
	outside := filepath.Join(dir, "outside")
	os.MkdirAll(outside, 0o755)
	if err := os.WriteFile(filepath.Join(outside, "big"), make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink(filepath.Join(outside, "big"), filepath.Join(job, "out", "link-file"))
	os.Symlink(outside, filepath.Join(job, "out", "link-dir"))
	os.Symlink("/", filepath.Join(job, "out", "root"))

	got, err := diskUsage(job)
	if err != nil {
		t.Fatal(err)
	}
	written := got - empty
	if written < 1<<20 || written > 1<<20+256<<10 {
		t.Fatalf("usage grew by %d bytes, want about 1 MiB (sparse file by its blocks, links not followed, hard link once)", written)
	}
}

// TestDiskUsageMissingFolder: a folder that is gone (the job ended) measures as an error, not
// as zero usage hiding a problem.
func TestDiskUsageMissingFolder(t *testing.T) {
	if _, err := diskUsage(filepath.Join(t.TempDir(), "gone")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want not exist", err)
	}
}

// TestDiskLimitPolicy: the server's cap is the default and the maximum; a spec may ask for
// less, and asking for more is refused naming limits.disk.
func TestDiskLimitPolicy(t *testing.T) {
	cfg := DefaultConfig(t.TempDir())
	if cfg.MaxDataSize != 10<<30 {
		t.Fatalf("default cap %d, want 10 GiB", cfg.MaxDataSize)
	}
	l, err := cfg.EffectiveLimits(spec.Limits{})
	if err != nil || int64(l.Disk) != cfg.MaxDataSize {
		t.Fatalf("unset: %d %v", l.Disk, err)
	}
	l, err = cfg.EffectiveLimits(spec.Limits{Disk: 20 << 20})
	if err != nil || l.Disk != 20<<20 {
		t.Fatalf("less: %d %v", l.Disk, err)
	}
	_, err = cfg.EffectiveLimits(spec.Limits{Disk: 11 << 30})
	var pe *PolicyError
	if !errors.As(err, &pe) || pe.Field != "limits.disk" {
		t.Fatalf("more than the cap: %v", err)
	}
}

// TestProbeDiskEnforcement: the probe names the filesystem holding the folder and its mount.
func TestProbeDiskEnforcement(t *testing.T) {
	dir := t.TempDir()
	d, err := ProbeDiskEnforcement(dir)
	if err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(dir)
	if d.Filesystem == "" || !(d.MountPoint == "/" || strings.HasPrefix(real, d.MountPoint+"/")) {
		t.Fatalf("%+v for %s", d, real)
	}
	t.Log(d)
	if _, err := ProbeDiskEnforcement(filepath.Join(dir, "gone")); err == nil {
		t.Error("probing a missing folder gave no error")
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/plain`: "/plain", `/x\134y`: `/x\y`, `/end\04`: `/end\04`} {
		if got := unescapeMount(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// TestDiskWatchKillsOncePastTheCap: the watch counts growth beyond its base, calls kill once
// when it passes the cap and reports it; below the cap it never does.
func TestDiskWatchKillsOncePastTheCap(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "input"), make([]byte, 4<<20), 0o644) // there before: not counted
	base, _ := diskUsage(dir)
	kills := make(chan struct{}, 4)
	w := startDiskWatch(dir, base, 2<<20, 10*time.Millisecond, func() { kills <- struct{}{} })
	time.Sleep(50 * time.Millisecond)
	select {
	case <-kills:
		t.Fatal("killed below the cap")
	default:
	}
	os.WriteFile(filepath.Join(dir, "out"), make([]byte, 3<<20), 0o644)
	select {
	case <-kills:
	case <-time.After(5 * time.Second):
		t.Fatal("not killed past the cap")
	}
	if !w.stop() || !strings.Contains(w.message(), "cap of 2MiB") || !strings.Contains(w.message(), "wrote 3MiB") {
		t.Fatalf("stop/message: %q", w.message())
	}
	if len(kills) != 0 {
		t.Error("killed more than once")
	}
	calm := startDiskWatch(dir, base+3<<20, 2<<20, 10*time.Millisecond, func() { t.Error("killed below the cap") })
	time.Sleep(30 * time.Millisecond)
	if calm.stop() {
		t.Error("reported past the cap below it")
	}
	var none *diskWatch
	if none.stop() {
		t.Error("a nil watch reported past the cap")
	}
}

// TestDiskWatchCatchesAWriterFasterThanItsInterval: a container that writes past the cap and
// exits between two measurements is still reported past it when the watch stops, with no
// kill (there is nothing left to kill), so nothing of it is loaded.
func TestDiskWatchCatchesAWriterFasterThanItsInterval(t *testing.T) {
	dir := t.TempDir()
	base, _ := diskUsage(dir)
	w := startDiskWatch(dir, base, 1<<20, time.Hour, func() { t.Error("killed after the container had ended") })
	os.WriteFile(filepath.Join(dir, "out"), make([]byte, 3<<20), 0o644)
	if !w.stop() {
		t.Fatal("a writer that passed the cap between two measurements was not reported")
	}
	if m := w.message(); !strings.Contains(m, "wrote 3MiB") || !strings.Contains(m, "cap of 1MiB") || strings.Contains(m, "killed") {
		t.Errorf("message: %q", m)
	}
}
