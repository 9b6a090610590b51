package datadir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// outside is a file outside the job folder that links point at.
func outside(t *testing.T) (dir, file string) {
	t.Helper()
	dir = t.TempDir()
	file = filepath.Join(dir, "secret.csv")
	if err := os.WriteFile(file, []byte("secret\nHOSTSECRET\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, file
}

// wantError checks err is an *Error naming file whose message contains what.
func wantError(t *testing.T, err error, file, what string) {
	t.Helper()
	var de *Error
	if !errors.As(err, &de) || de.File != file || !strings.Contains(de.Message, what) {
		t.Fatalf("want an error naming %s (%s), got %v", file, what, err)
	}
}

func TestFolderRefusesWhatIsNotARegularFile(t *testing.T) {
	hostDir, secret := outside(t)
	cases := map[string]struct {
		setup func(t *testing.T, d string)
		file  string // the path the error names
		what  string
	}{
		"symlink to a host file": {func(t *testing.T, d string) {
			os.Symlink(secret, filepath.Join(d, "out/tables/x.csv"))
		}, "out/tables/x.csv", "symbolic link"},
		"symlink inside the folder": {func(t *testing.T, d string) {
			write(t, filepath.Join(d, "out/a.csv"), "a\n1\n")
			os.Symlink("../a.csv", filepath.Join(d, "out/tables/x.csv"))
		}, "out/tables/x.csv", "symbolic link"},
		"relative symlink climbing out": {func(t *testing.T, d string) {
			os.Symlink("../../../../../../../../../../"+secret, filepath.Join(d, "out/files/f.txt"))
		}, "out/files/f.txt", "symbolic link"},
		"dangling symlink": {func(t *testing.T, d string) {
			os.Symlink("/nonexistent/x", filepath.Join(d, "out/state.json"))
		}, "out/state.json", "symbolic link"},
		"symlinked folder": {func(t *testing.T, d string) {
			os.Symlink(hostDir, filepath.Join(d, "out/tables/s.csv"))
		}, "out/tables/s.csv", "symbolic link"},
		"symlinked out/files": {func(t *testing.T, d string) {
			os.RemoveAll(filepath.Join(d, "out/files"))
			os.Symlink(hostDir, filepath.Join(d, "out/files"))
		}, "out/files", "symbolic link"},
		"hard link": {func(t *testing.T, d string) {
			write(t, filepath.Join(d, "out/tables/a.csv"), "a\n1\n")
			if err := os.Link(filepath.Join(d, "out/tables/a.csv"), filepath.Join(d, "out/tables/b.csv")); err != nil {
				t.Fatal(err)
			}
		}, "out/tables/a.csv", "hard link"},
		"fifo": {func(t *testing.T, d string) {
			if err := syscall.Mkfifo(filepath.Join(d, "out/tables/x.csv"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "out/tables/x.csv", "FIFO"},
		"socket": {func(t *testing.T, d string) {
			ln, err := net.Listen("unix", filepath.Join(d, "out/files/s.sock"))
			if err != nil {
				t.Skip(err)
			}
			t.Cleanup(func() { ln.Close() })
		}, "out/files/s.sock", "socket"},
		"device": {func(t *testing.T, d string) {
			// 1,3 is /dev/null; only root may make one.
			if err := syscall.Mknod(filepath.Join(d, "out/files/null"), syscall.S_IFCHR|0o644, 1<<8|3); err != nil {
				t.Skip("mknod:", err)
			}
		}, "out/files/null", "device"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			d := t.TempDir()
			Layout(d)
			c.setup(t, d)
			done := make(chan error, 1)
			go func() { _, err := ReadOutputs(d, OutputMapping{}, Limits{}); done <- err }()
			select {
			case err := <-done:
				wantError(t, err, c.file, c.what)
			case <-time.After(10 * time.Second):
				t.Fatal("ReadOutputs blocked")
			}
			wantError(t, Check(d, "out", Limits{}), c.file, c.what)
			_, err := CopyTree(filepath.Join(d, "out"), "out", filepath.Join(t.TempDir(), "copy"), Limits{})
			wantError(t, err, c.file, c.what)
		})
	}
}

func TestFolderOpenNeverFollows(t *testing.T) {
	_, secret := outside(t)
	d := t.TempDir()
	Layout(d)
	write(t, filepath.Join(d, "out/files/ok.txt"), "ok")
	os.Symlink(secret, filepath.Join(d, "out/files/link.txt"))
	os.Symlink(filepath.Dir(secret), filepath.Join(d, "out/dir"))
	f, err := OpenFolder(d, "")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fh, err := f.Open("out/files/ok.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(fh)
	fh.Close()
	if string(b) != "ok" {
		t.Fatalf("read %q", b)
	}
	if _, err := f.Open("out/files/link.txt"); err == nil {
		t.Fatal("opened a link")
	}
	_, err = f.Open("out/dir/secret.csv")
	wantError(t, err, "out/dir", "symbolic link")
	for _, rel := range []string{"../x", "out/../../x", "out/./files/ok.txt", "/etc/passwd", "out//files"} {
		if _, err := f.Open(rel); err == nil {
			t.Errorf("%s: opened", rel)
		}
		if _, err := f.ReadDir(rel); err == nil {
			t.Errorf("%s: listed", rel)
		}
	}
	if _, err := f.Open("out/files/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestWriteStateRemovesALinkInsteadOfWritingThroughIt(t *testing.T) {
	_, victim := outside(t)
	d := t.TempDir()
	Layout(d)
	os.Symlink(victim, filepath.Join(d, "in/state.json"))
	if err := WriteState(d, []byte(`{"n": 1}`)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "secret\nHOSTSECRET\n" {
		t.Fatalf("written through the link: %q", b)
	}
	fi, err := os.Lstat(filepath.Join(d, "in/state.json"))
	if err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("in/state.json: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(filepath.Join(d, "in/state.json")); string(b) != `{"n": 1}` {
		t.Fatalf("state %q", b)
	}
}

func TestOutputCaps(t *testing.T) {
	t.Run("state", func(t *testing.T) {
		d := t.TempDir()
		Layout(d)
		write(t, filepath.Join(d, "out/state.json"), `{"x": "`+strings.Repeat("a", 2<<20)+`"}`)
		_, _, err := ReadState(d, Limits{})
		wantError(t, err, "out/state.json", "1 MiB")
		write(t, filepath.Join(d, "out/state.json"), `{"x": 1}`)
		if b, ok, err := ReadState(d, Limits{}); err != nil || !ok || string(b) != `{"x": 1}` {
			t.Fatalf("small state: %q %v %v", b, ok, err)
		}
	})
	t.Run("manifest", func(t *testing.T) {
		d := t.TempDir()
		Layout(d)
		write(t, filepath.Join(d, "out/tables/t.csv"), "a\n1\n")
		write(t, filepath.Join(d, "out/tables/t.csv.manifest"), `{"destination": "out.c-a.t"`+strings.Repeat(" ", 2<<10)+`}`)
		_, err := ReadOutputs(d, OutputMapping{}, Limits{MaxManifestBytes: 1 << 10})
		wantError(t, err, "out/tables/t.csv.manifest", "1 KiB")
		write(t, filepath.Join(d, "out/files/f"), "x")
		write(t, filepath.Join(d, "out/files/f.manifest"), `{"tags": []`+strings.Repeat(" ", 2<<10)+`}`)
		os.Remove(filepath.Join(d, "out/tables/t.csv.manifest"))
		os.Rename(filepath.Join(d, "out/tables/t.csv"), filepath.Join(d, "out/tables/out.c-a.t.csv"))
		_, err = ReadOutputs(d, OutputMapping{}, Limits{MaxManifestBytes: 1 << 10})
		wantError(t, err, "out/files/f.manifest", "1 KiB")
	})
	t.Run("files", func(t *testing.T) {
		d := t.TempDir()
		Layout(d)
		for i := range 5 {
			write(t, filepath.Join(d, fmt.Sprintf("out/files/f%d", i)), "x")
		}
		// out/files, out/tables and five files: seven entries.
		if _, err := ReadOutputs(d, OutputMapping{}, Limits{MaxOutputFiles: 7}); err != nil {
			t.Fatalf("at the cap: %v", err)
		}
		_, err := ReadOutputs(d, OutputMapping{}, Limits{MaxOutputFiles: 6})
		wantError(t, err, "out/", "6")
		_, err = CopyTree(filepath.Join(d, "out"), "out", filepath.Join(t.TempDir(), "c"), Limits{MaxOutputFiles: 6})
		wantError(t, err, "out/", "6")
	})
}

func TestCopyTreeCopiesNothingWhenRefused(t *testing.T) {
	_, secret := outside(t)
	src := filepath.Join(t.TempDir(), "out")
	write(t, filepath.Join(src, "a.txt"), "a")
	write(t, filepath.Join(src, "sub/b.txt"), "b")
	os.MkdirAll(filepath.Join(src, "empty"), 0o755)
	dst := filepath.Join(t.TempDir(), "copy")
	n, err := CopyTree(src, "out", dst, Limits{})
	if err != nil || n != 2 {
		t.Fatalf("copy: %d %v", n, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "sub/b.txt")); string(b) != "b" {
		t.Fatalf("copied %q", b)
	}
	if fi, err := os.Stat(filepath.Join(dst, "empty")); err != nil || !fi.IsDir() {
		t.Fatalf("empty folder: %v", err)
	}
	os.Symlink(secret, filepath.Join(src, "z.txt"))
	dst2 := filepath.Join(t.TempDir(), "copy")
	_, err = CopyTree(src, "out", dst2, Limits{})
	wantError(t, err, "out/z.txt", "symbolic link")
	if _, err := os.Stat(dst2); !os.IsNotExist(err) {
		t.Fatalf("something was copied: %v", err)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{1 << 20: "1 MiB", 1 << 10: "1 KiB", 1536: "1536 B", 3 << 30: "3 GiB", 50: "50 B"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("%d: %q, want %q", n, got, want)
		}
	}
}
