package block

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/job/jobtest"
)

// TestBlockOutputLinksAreRefused: a block that leaves a link (or a hard link) in /data/out
// fails as a user error naming the path, and its outputs are not kept for `--out` to copy.
func TestBlockOutputLinksAreRefused(t *testing.T) {
	h := newHarness(t, nil)
	host := jobtest.NewHostFiles(t)
	cases := []struct{ code, path string }{
		{"echo ok > /data/out/a.txt\nln -s " + host.CSV + " /data/out/x.txt\n", "out/x.txt"},
		{"mkdir /data/out/sub\nln -s /etc /data/out/sub/etc\n", "out/sub/etc"},
		{"ln -s /etc/passwd /data/out/passwd\n", "out/passwd"},
		{"echo a > /data/out/a.txt\nln /data/out/a.txt /data/out/b.txt\n", "out/a.txt"},
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			j, out := h.Run(t, h.Block(c.code))
			if j.State != job.StateFailed || j.Reason != job.ReasonUserError || !strings.Contains(j.Message, c.path) || !strings.Contains(j.Message, "link") {
				t.Fatalf("want a user error naming %s as a link, got %s/%s %q\n%s", c.path, j.State, j.Reason, j.Message, out)
			}
			t.Log(j.Message)
			if j.OutputDir != "" {
				t.Errorf("outputs kept at %s", j.OutputDir)
			}
			if _, err := os.Lstat(filepath.Join(filepath.Join(h.Cfg.DataDir, "jobs", j.ID), "out")); !os.IsNotExist(err) {
				t.Errorf("the job's out folder exists: %v", err)
			}
			if strings.Contains(j.Message+out, host.Marker) {
				t.Error("host content leaked")
			}
		})
	}
	// A clean block still keeps its outputs.
	j, out := h.Run(t, h.Block("mkdir /data/out/sub\necho hi > /data/out/sub/a.txt\n"))
	if j.State != job.StateSucceeded || j.OutputDir == "" {
		t.Fatalf("clean block: %s/%s %q\n%s", j.State, j.Reason, j.Message, out)
	}
	if b, err := os.ReadFile(filepath.Join(j.OutputDir, "sub", "a.txt")); err != nil || string(b) != "hi\n" {
		t.Fatalf("kept output: %q %v", b, err)
	}
}
