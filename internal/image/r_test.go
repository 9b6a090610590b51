package image

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/pkgindex"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// TestEnsureRSystemAndCRANPackages: an R image with a Debian package (r-cran-digest) and
// packages from a local CRAN-style repository (the example berthdemo and one made for this
// run, so the hash is new every time). Skipped without the r base outside CI (bootstrapping
// it takes minutes); CI bootstraps it before the tests.
func TestEnsureRSystemAndCRANPackages(t *testing.T) {
	eng := enginetest.Require(t)
	ctx := context.Background()
	probe := NewManager(eng, DefaultConfig(), nil)
	if ok, err := probe.HasBase(ctx, "r"); err != nil {
		t.Fatal(err)
	} else if !ok {
		if os.Getenv("CI") == "true" {
			t.Fatal("the r base image is missing: `make test` bootstraps it (berth runtime bootstrap r)")
		}
		t.Skip("no r base image (berth runtime bootstrap r makes it, in a few minutes)")
	}
	ix, err := pkgindex.LoadDir("../../examples/packages")
	if err != nil {
		t.Fatal(err)
	}
	own := "berthu" + uniq()
	if err := ix.AddRPackage(own, "1.0.0", map[string][]byte{
		"DESCRIPTION": []byte("Package: " + own + "\nVersion: 1.0.0\nTitle: Test\nDescription: Test.\nLicense: MIT\n"),
		"NAMESPACE":   []byte("export(answer)\n"),
		"R/answer.R":  []byte("answer <- function() 42\n"),
	}); err != nil {
		t.Fatal(err)
	}
	url, stop, err := pkgindex.Serve(ctx, "127.0.0.1:0", ix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	m := testManager(t, eng, "http://127.0.0.1:9/simple/")
	m.cfg.CRANURL = url + "/cran"
	req := Request{Language: "r", SystemPackages: []string{"r-cran-digest"}, Dependencies: []string{own, "berthdemo"}}
	res, err := m.Ensure(ctx, req, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.RemoveImage(context.Background(), res.Ref) })
	t.Logf("built %s in %s", res.Ref, res.Duration)
	id, err := eng.Start(ctx, runtime.TaskSpec{Image: res.Ref, Labels: enginetest.Labels(t), Network: "none",
		Cmd:      []string{"Rscript", "-e", "library(berthdemo); library(digest); library(" + own + "); cat(spread(c(1, 5)), answer(), digest('x', algo = 'md5') != '', '\\n')"},
		Tmpfs:    []runtime.Tmpfs{{Target: "/tmp"}},
		Security: runtime.Security{User: "1000:1000", ReadOnlyRootfs: true, DropAllCaps: true, NoNewPrivileges: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Remove(ctx, id)
	ex, err := eng.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var out, errb strings.Builder
	eng.Logs(ctx, id, false, &out, &errb)
	if ex.Code != 0 || out.String() != "4 42 TRUE \n" {
		t.Fatalf("exit %d, printed %q, stderr %s", ex.Code, out.String(), errb.String())
	}
}
