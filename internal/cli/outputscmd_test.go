package cli

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func tarOf(t *testing.T, entries ...tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(h.Name))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(h.Name))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func TestExtractTarRefusesEscapesAndLinks(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "out")
	n, err := extractTar(bytes.NewReader(tarOf(t,
		tar.Header{Name: "sub/", Typeflag: tar.TypeDir, Mode: 0o755},
		tar.Header{Name: "sub/a.txt", Typeflag: tar.TypeReg, Mode: 0o644},
		tar.Header{Name: "b.txt", Typeflag: tar.TypeReg, Mode: 0o644})), dir)
	if err != nil || n != 2 {
		t.Fatalf("extract: %d %v", n, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "sub", "a.txt")); string(b) != "sub/a.txt" {
		t.Fatalf("sub/a.txt = %q", b)
	}
	for _, tc := range []struct {
		h    tar.Header
		want string
	}{
		{tar.Header{Name: "../escape.txt", Typeflag: tar.TypeReg}, "not a clean path"},
		{tar.Header{Name: "/abs.txt", Typeflag: tar.TypeReg}, "not a clean path"},
		{tar.Header{Name: "x/../../escape.txt", Typeflag: tar.TypeReg}, "not a clean path"},
		{tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}, "link"},
		{tar.Header{Name: "hard", Typeflag: tar.TypeLink, Linkname: "b.txt"}, "link"},
	} {
		_, err := extractTar(bytes.NewReader(tarOf(t, tc.h)), dir)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.h.Name, err, tc.want)
		}
	}
	if _, err := os.Lstat(filepath.Join(base, "escape.txt")); !os.IsNotExist(err) {
		t.Fatalf("a file escaped: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "link")); !os.IsNotExist(err) {
		t.Fatalf("a link was made: %v", err)
	}
	// A link already in the folder that leads out is replaced, not written through.
	outside := filepath.Join(base, "outside.txt")
	os.WriteFile(outside, []byte("keep"), 0o644)
	os.Symlink(outside, filepath.Join(dir, "b.txt"))
	os.Remove(filepath.Join(dir, "b.txt"))
	os.Symlink(outside, filepath.Join(dir, "b.txt"))
	if _, err := extractTar(bytes.NewReader(tarOf(t, tar.Header{Name: "b.txt", Typeflag: tar.TypeReg})), dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(outside); string(b) != "keep" {
		t.Fatalf("written through a link: %q", b)
	}
}
