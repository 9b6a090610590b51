package image

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/pkgindex"
	"github.com/berthproject/berth/internal/runtime"
)

// TestInstallFailureNamesPackageAndLine: each installer's own error line is found in a build's
// output (colour codes and all), with the package as the request named it.
func TestInstallFailureNamesPackageAndLine(t *testing.T) {
	cases := []struct {
		name      string
		req       Request
		log       string
		installer string
		pkg       string
		line      string
	}{
		{"pip", Request{Language: "python", Dependencies: []string{"numpy", "Nope_Pkg==1.0"}},
			"Looking in indexes: http://x/simple/\n\x1b[31mERROR: Could not find a version that satisfies the requirement nope-pkg==1.0 (from versions: none)\x1b[0m\n\x1b[31mERROR: No matching distribution found for nope-pkg==1.0\x1b[0m\n",
			"pip", "Nope_Pkg==1.0", "ERROR: No matching distribution found for nope-pkg==1.0"},
		{"R", Request{Language: "r", Dependencies: []string{"ggplot9"}},
			"Warning message:\npackage ‘ggplot9’ is not available for this version of R\nfailed to install: ggplot9\n",
			"R", "ggplot9", "package ‘ggplot9’ is not available for this version of R"},
		{"R no package", Request{Language: "r", Dependencies: []string{"zzz"}},
			"Error in loadNamespace(x) : there is no package called ‘zzz’\n",
			"R", "zzz", "Error in loadNamespace(x) : there is no package called ‘zzz’"},
		{"apt", Request{Language: "python", SystemPackages: []string{"libnope"}},
			"Reading package lists...\n\x1b[1;31mE: \x1b[0mUnable to locate package libnope\n",
			"apt", "libnope", "E: Unable to locate package libnope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ie := installFailure(c.req, c.log)
			if ie == nil {
				t.Fatalf("no installer line found in %q", c.log)
			}
			if ie.Installer != c.installer || ie.Package != c.pkg || ie.Line != c.line {
				t.Fatalf("got %+v, want %s %q %q", ie, c.installer, c.pkg, c.line)
			}
			if strings.Contains(ie.Error(), "\x1b") {
				t.Fatalf("escape codes in %q", ie.Error())
			}
		})
	}
	if ie := installFailure(Request{Language: "python"}, "COPY failed: no such file\n"); ie != nil {
		t.Fatalf("a failure that is no installer's: %+v", ie)
	}
}

// TestMissingPipPackageIsAnInstallError: a dependency the (loopback) index does not have
// fails the real build with an *InstallError naming it and quoting pip's own line, and the
// full log stays on disk.
func TestMissingPipPackageIsAnInstallError(t *testing.T) {
	eng := requireBase(t, "python")
	m := testManager(t, eng, indexWith(t, "berth-present-"+uniq(), "1.0.0", "1"))
	missing := "berth-missing-" + uniq()
	req := Request{Language: "python", Dependencies: []string{missing}}
	_, err := m.Ensure(context.Background(), req, io.Discard)
	var ie *InstallError
	if !errors.As(err, &ie) {
		t.Fatalf("err %v, want an *InstallError", err)
	}
	var be *runtime.BuildError
	if !errors.As(err, &be) {
		t.Fatalf("the engine's build error is not kept: %v", err)
	}
	msg := err.Error()
	if ie.Installer != "pip" || ie.Package != missing || ie.Field != "dependencies" {
		t.Fatalf("install error %+v", ie)
	}
	if !strings.Contains(msg, "ERROR: No matching distribution found for "+missing) || strings.Contains(msg, "\x1b") {
		t.Fatalf("message %q does not quote pip's line (or has escapes)", msg)
	}
	if strings.Contains(msg, "RUN ") || strings.Contains(msg, "PIP_INDEX_URL") {
		t.Fatalf("message %q quotes the generated Dockerfile", msg)
	}
	if !strings.Contains(msg, ie.Hash[:16]) {
		t.Fatalf("message %q does not name the build log", msg)
	}
	if b, err := os.ReadFile(ie.BuildLog); err != nil || !strings.Contains(string(b), "No matching distribution found for "+missing) {
		t.Fatalf("build log %s: %v\n%s", ie.BuildLog, err, b)
	}
}

// TestMissingCRANAndDebianPackagesAreInstallErrors: a CRAN package the (loopback) repository
// does not have, and a Debian package apt cannot find, fail real builds with an *InstallError
// naming the package and quoting R's and apt's own lines.
func TestMissingCRANAndDebianPackagesAreInstallErrors(t *testing.T) {
	eng := requireBase(t, "python")
	ctx := context.Background()
	t.Run("apt", func(t *testing.T) {
		m := testManager(t, eng, "http://127.0.0.1:9/simple/")
		missing := "berth-missing-" + uniq()
		_, err := m.Ensure(ctx, Request{Language: "python", SystemPackages: []string{missing}}, io.Discard)
		var ie *InstallError
		if !errors.As(err, &ie) || ie.Installer != "apt" || ie.Package != missing || ie.Field != "system_packages" {
			t.Fatalf("err %v (%+v), want apt's install error for %s", err, ie, missing)
		}
		if !strings.Contains(err.Error(), "E: Unable to locate package "+missing) || strings.Contains(err.Error(), "\x1b") {
			t.Fatalf("message %q", err.Error())
		}
	})
	t.Run("cran", func(t *testing.T) {
		if ok, err := m0(eng).HasBase(ctx, "r"); err != nil {
			t.Fatal(err)
		} else if !ok {
			if os.Getenv("CI") == "true" {
				t.Fatal("the r base image is missing: `make test` bootstraps it (berth runtime bootstrap r)")
			}
			t.Skip("no r base image")
		}
		ix := pkgindex.NewIndex()
		url, stop, err := pkgindex.Serve(ctx, "127.0.0.1:0", ix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
		m := testManager(t, eng, "http://127.0.0.1:9/simple/")
		m.cfg.CRANURL = url + "/cran"
		missing := "berthmissing" + uniq()
		_, err = m.Ensure(ctx, Request{Language: "r", Dependencies: []string{missing}}, io.Discard)
		var ie *InstallError
		if !errors.As(err, &ie) || ie.Installer != "R" || ie.Package != missing {
			t.Fatalf("err %v (%+v), want R's install error for %s", err, ie, missing)
		}
		if !strings.Contains(ie.Line, missing) || strings.Contains(err.Error(), "\x1b") {
			t.Fatalf("line %q, message %q", ie.Line, err.Error())
		}
		t.Logf("%v", err)
	})
}

func m0(eng runtime.Runtime) *Manager { return NewManager(eng, DefaultConfig(), nil) }
