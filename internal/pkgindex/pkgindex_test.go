package pkgindex

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestSimpleIndexAndWheel(t *testing.T) {
	ix := NewIndex()
	if err := ix.AddWheel("My_Pkg", "1.2.0", map[string][]byte{"my_pkg/__init__.py": []byte("X = 1\n")}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ix.Handler())
	defer srv.Close()
	code, body := get(t, srv.URL+"/simple/")
	if code != 200 || !strings.Contains(string(body), `href="my-pkg/"`) {
		t.Fatalf("root: %d %s", code, body)
	}
	code, body = get(t, srv.URL+"/simple/my-pkg/")
	if code != 200 || !strings.Contains(string(body), "My_Pkg-1.2.0-py3-none-any.whl#sha256=") {
		t.Fatalf("project: %d %s", code, body)
	}
	code, whl := get(t, srv.URL+"/files/My_Pkg-1.2.0-py3-none-any.whl")
	if code != 200 {
		t.Fatalf("wheel: %d", code)
	}
	zr, err := zip.NewReader(bytes.NewReader(whl), int64(len(whl)))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range zr.File {
		names[f.Name] = true
	}
	for _, n := range []string{"my_pkg/__init__.py", "My_Pkg-1.2.0.dist-info/METADATA", "My_Pkg-1.2.0.dist-info/RECORD"} {
		if !names[n] {
			t.Errorf("wheel lacks %s: %v", n, names)
		}
	}
	if code, _ := get(t, srv.URL+"/simple/absent/"); code != 404 {
		t.Errorf("absent project: %d", code)
	}
}

// TestPipDownloadsFromIndex proves the index is what pip expects, with the host's pip.
func TestPipDownloadsFromIndex(t *testing.T) {
	if exec.Command("python3", "-m", "pip", "--version").Run() != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 -m pip is needed on the host under CI")
		}
		t.Skip("no pip on this host")
	}
	ix := NewIndex()
	ix.AddWheel("berth-pip-probe", "0.3.1", map[string][]byte{"berth_pip_probe/__init__.py": []byte("V = 3\n")})
	url, stop, err := Serve(context.Background(), "127.0.0.1:0", ix)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	dir := t.TempDir()
	cmd := exec.Command("python3", "-m", "pip", "download", "--no-deps", "--no-cache-dir", "--index-url", url+"/simple/",
		"--find-links", "", "-d", dir, "berth-pip-probe==0.3.1")
	cmd.Env = append(os.Environ(), "PIP_FIND_LINKS=", "PIP_CONFIG_FILE=/dev/null")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pip download: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "berth_pip_probe-0.3.1-py3-none-any.whl")); err != nil {
		t.Fatal(err)
	}
}

func TestCRANRepository(t *testing.T) {
	ix, err := LoadDir("../../examples/packages")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ix.Handler())
	defer srv.Close()
	code, body := get(t, srv.URL+"/cran/src/contrib/PACKAGES")
	if code != 200 || !strings.Contains(string(body), "Package: berthdemo\nVersion: 0.1.0\n") {
		t.Fatalf("PACKAGES: %d %s", code, body)
	}
	code, tgz := get(t, srv.URL+"/cran/src/contrib/berthdemo_0.1.0.tar.gz")
	if code != 200 {
		t.Fatalf("tarball: %d", code)
	}
	gz, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	found := false
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		found = found || h.Name == "berthdemo/DESCRIPTION"
	}
	if !found {
		t.Fatal("tarball lacks berthdemo/DESCRIPTION")
	}
	// The same content makes the same bytes (stable hashes).
	ix2, _ := LoadDir("../../examples/packages")
	srv2 := httptest.NewServer(ix2.Handler())
	defer srv2.Close()
	if _, again := get(t, srv2.URL+"/cran/src/contrib/berthdemo_0.1.0.tar.gz"); !bytes.Equal(again, tgz) {
		t.Fatal("archives are not deterministic")
	}
}

func TestLoadDirErrors(t *testing.T) {
	if _, err := LoadDir(t.TempDir()); err == nil {
		t.Fatal("an empty folder loaded")
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "python", "noversion"), 0o755)
	if _, err := LoadDir(dir); err == nil || !strings.Contains(err.Error(), "<name>-<version>") {
		t.Fatalf("bad folder name: %v", err)
	}
}
