package image

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/berthproject/berth/internal/pkgindex"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

func TestSpecHash(t *testing.T) {
	base := Request{Language: "python", Dependencies: []string{"b==1", "a==2"}, SystemPackages: []string{"libx", "liba"}}
	h := specHash("sha256:1", base, "1")
	reordered := base
	reordered.Dependencies = []string{"a==2", "b==1"}
	reordered.SystemPackages = []string{"liba", "libx"}
	if specHash("sha256:1", reordered, "1") != h {
		t.Fatal("hash depends on the order of dependencies")
	}
	for name, other := range map[string]string{
		"base ID":        specHash("sha256:2", base, "1"),
		"recipe version": specHash("sha256:1", base, "2"),
		"dependencies":   specHash("sha256:1", Request{Language: "python", Dependencies: []string{"a==2"}, SystemPackages: base.SystemPackages}, "1"),
		"system pkgs":    specHash("sha256:1", Request{Language: "python", Dependencies: base.Dependencies, SystemPackages: []string{"liba"}}, "1"),
		"api library":    specHash("sha256:1", Request{Language: "python", Dependencies: base.Dependencies, SystemPackages: base.SystemPackages, InstallAPILibrary: true}, "1"),
	} {
		if other == h {
			t.Errorf("hash does not change with %s", name)
		}
	}
}

func TestDockerfileOrderAndQuoting(t *testing.T) {
	df, err := dockerfile(Request{Language: "python", Dependencies: []string{"pandas==2.2"}, SystemPackages: []string{"libpq5"}}, "berth/python:3.11")
	if err != nil {
		t.Fatal(err)
	}
	sys, pip := strings.Index(df, "apt-get install"), strings.Index(df, "$PIP install")
	if sys < 0 || pip < 0 || sys > pip {
		t.Fatalf("system packages must come before language packages:\n%s", df)
	}
	if !strings.Contains(df, "'pandas==2.2'") || !strings.HasSuffix(df, "USER 1000:1000\n") {
		t.Fatalf("dockerfile:\n%s", df)
	}
	if _, err := dockerfile(Request{Language: "python", Dependencies: []string{"x'; rm -rf /"}}, "b"); err == nil {
		t.Fatal("a quote in a dependency reached the Dockerfile")
	}
	r, err := dockerfile(Request{Language: "r", Dependencies: []string{"digest"}}, "berth/r:4.2")
	if err != nil || !strings.Contains(r, `requireNamespace`) {
		t.Fatalf("R dockerfile must check the install (install.packages only warns): %v\n%s", err, r)
	}
}

func TestBaseRef(t *testing.T) {
	if ref, err := BaseRef("python"); err != nil || ref != "berth/python:3.11" {
		t.Fatalf("%s %v", ref, err)
	}
	if _, err := BaseRef("cobol"); err == nil || !strings.Contains(err.Error(), "python, r, shell") {
		t.Fatalf("unknown language: %v", err)
	}
}

// requireBase returns the engine with the language's base image, bootstrapping it outside CI.
func requireBase(t *testing.T, lang string) *docker.Engine {
	t.Helper()
	eng := enginetest.Require(t)
	m := NewManager(eng, DefaultConfig(), nil)
	ok, err := m.HasBase(context.Background(), lang)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		if os.Getenv("CI") == "true" {
			t.Fatalf("base image for %s is missing: `make test` bootstraps it (berth runtime bootstrap %s)", lang, lang)
		}
		if _, _, err := m.Bootstrap(context.Background(), lang, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	return eng
}

func uniq() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// indexWith serves a local pip index holding one package.
func indexWith(t *testing.T, name, version, value string) string {
	t.Helper()
	ix := pkgindex.NewIndex()
	mod := strings.ReplaceAll(name, "-", "_")
	if err := ix.AddWheel(name, version, map[string][]byte{mod + "/__init__.py": []byte("VALUE = " + value + "\n")}); err != nil {
		t.Fatal(err)
	}
	url, stop, err := pkgindex.Serve(context.Background(), "127.0.0.1:0", ix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return url + "/simple/"
}

func testManager(t *testing.T, eng *docker.Engine, pipURL string) *Manager {
	cfg := DefaultConfig()
	cfg.PipIndexURL = pipURL
	cfg.LogDir = t.TempDir()
	cfg.ExtraLabels = enginetest.Labels(t)
	return NewManager(eng, cfg, nil)
}

// runIn runs a command in an image the way jobs do and returns its stdout.
func runIn(t *testing.T, eng *docker.Engine, ref string, cmd ...string) string {
	t.Helper()
	ctx := context.Background()
	labels := enginetest.Labels(t)
	id, err := eng.Start(ctx, runtime.TaskSpec{Image: ref, Cmd: cmd, Labels: labels, Network: "none",
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
	if ex.Code != 0 {
		t.Fatalf("%v exited %d: %s %s", cmd, ex.Code, out.String(), errb.String())
	}
	return out.String()
}

// TestEnsureInstallsFromLocalIndexBuildsOnceAndReuses: a dependency from a pip index on
// loopback is built into a generated image by exactly one of several concurrent callers,
// works in a locked-down container, and is reused without a build afterwards.
func TestEnsureInstallsFromLocalIndexBuildsOnceAndReuses(t *testing.T) {
	eng := requireBase(t, "python")
	name := "berth-t-" + uniq()
	m := testManager(t, eng, indexWith(t, name, "1.0.0", "42"))
	req := Request{Language: "python", Dependencies: []string{name + "==1.0.0"}}
	ctx := context.Background()

	var wg sync.WaitGroup
	results := make([]Result, 4)
	errs := make([]error, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = m.Ensure(ctx, req, io.Discard)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("ensure %d: %v", i, err)
		}
	}
	t.Cleanup(func() { eng.RemoveImage(context.Background(), results[0].Ref) })
	if s := m.Stats(); s.Builds != 1 {
		t.Fatalf("%d builds for one new hash from 4 concurrent callers, want 1", s.Builds)
	}
	for _, r := range results {
		if r.ImageID != results[0].ImageID || r.CacheHit {
			t.Fatalf("concurrent callers got %+v and %+v", r, results[0])
		}
	}
	if p, err := m.BuildLog(results[0].Hash); err != nil {
		t.Fatal(err)
	} else if b, _ := os.ReadFile(p); !strings.Contains(string(b), name) {
		t.Fatalf("build log does not mention the package:\n%s", b)
	}
	mod := strings.ReplaceAll(name, "-", "_")
	if out := runIn(t, eng, results[0].Ref, "python3", "-c", "import "+mod+"; print("+mod+".VALUE)"); out != "42\n" {
		t.Fatalf("the dependency in the image printed %q", out)
	}
	again, err := m.Ensure(ctx, req, io.Discard)
	if err != nil || !again.CacheHit || again.ImageID != results[0].ImageID || m.Stats().Builds != 1 {
		t.Fatalf("second ensure: %+v %v (builds %d)", again, err, m.Stats().Builds)
	}
}

// TestEnsureFailedBuildKeepsLogAndRetries: a dependency the index does not have fails the
// build with its log kept, and is not cached as a failure.
func TestEnsureFailedBuildKeepsLogAndRetries(t *testing.T) {
	eng := requireBase(t, "python")
	m := testManager(t, eng, indexWith(t, "berth-present-"+uniq(), "1.0.0", "1"))
	missing := "berth-missing-" + uniq()
	req := Request{Language: "python", Dependencies: []string{missing + "==9.9"}}
	for i := 0; i < 2; i++ {
		_, err := m.Ensure(context.Background(), req, io.Discard)
		var be *runtime.BuildError
		if !errors.As(err, &be) {
			t.Fatalf("attempt %d: err %v, want a build error", i, err)
		}
	}
	if s := m.Stats(); s.BuildFailures != 2 || s.Builds != 0 {
		t.Fatalf("stats %+v, want 2 failures (no cached failure)", s)
	}
	hash, _, _ := m.Hash(context.Background(), req)
	p, err := m.BuildLog(hash)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); !strings.Contains(string(b), missing) {
		t.Fatalf("build log does not name the missing package:\n%s", b)
	}
}

// TestHelperLibraryInBase: the python base has the helper library; it reads config.json.
func TestHelperLibraryInBase(t *testing.T) {
	eng := requireBase(t, "python")
	dir := t.TempDir()
	os.WriteFile(dir+"/config.json", []byte(`{"parameters": {"k": "v"}}`), 0o644)
	os.Chmod(dir, 0o755)
	ctx := context.Background()
	ref, _ := BaseRef("python")
	id, err := eng.Start(ctx, runtime.TaskSpec{Image: ref, Labels: enginetest.Labels(t), Network: "none",
		Cmd:    []string{"python3", "-c", "import berth; print(berth.in_container(), berth.parameters()['k'], berth.data_dir())"},
		Env:    map[string]string{"BERTH_IN_CONTAINER": "1"},
		Mounts: []runtime.Mount{{Source: dir, Target: "/data", ReadOnly: true}}})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Remove(ctx, id)
	eng.Wait(ctx, id)
	var out strings.Builder
	eng.Logs(ctx, id, false, &out, io.Discard)
	if out.String() != "True v /data\n" {
		t.Fatalf("helper library printed %q", out.String())
	}
}

func TestMissingBaseSaysHowToMakeIt(t *testing.T) {
	eng := enginetest.Require(t)
	m := NewManager(eng, DefaultConfig(), nil)
	_, err := m.Ensure(context.Background(), Request{Language: "python", BaseImage: "berth/absent-" + uniq() + ":1"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "never pulls") {
		t.Fatalf("missing custom image: %v", err)
	}
}

// TestInstallAPILibraryInCustomImage: a custom image without berth's helper library gets it
// with install_api_library.
func TestInstallAPILibraryInCustomImage(t *testing.T) {
	eng := requireBase(t, "python")
	ctx := context.Background()
	dir := t.TempDir()
	base, _ := BaseRef("python")
	os.WriteFile(dir+"/Dockerfile", []byte("FROM "+base+"\nUSER root\nRUN rm -rf /opt/berth/lib/python\nUSER 1000:1000\n"), 0o644)
	custom := "berth/test-custom:" + uniq()
	if _, err := eng.BuildImage(ctx, runtime.BuildSpec{ContextDir: dir, Tags: []string{custom}, Labels: enginetest.Labels(t)}, io.Discard); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.RemoveImage(context.Background(), custom) })
	m := testManager(t, eng, "http://127.0.0.1:9/simple/")
	plain, err := m.Ensure(ctx, Request{Language: "python", BaseImage: custom}, io.Discard)
	if err != nil || plain.Ref != custom || !plain.CacheHit {
		t.Fatalf("custom image without extras: %+v %v", plain, err)
	}
	res, err := m.Ensure(ctx, Request{Language: "python", BaseImage: custom, InstallAPILibrary: true}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.RemoveImage(context.Background(), res.Ref) })
	if out := runIn(t, eng, res.Ref, "python3", "-c", "import berth; print(berth.in_container())"); out != "False\n" {
		t.Fatalf("helper library in the custom image printed %q", out)
	}
}

func TestMissingBaseErrorNamesTheCommand(t *testing.T) {
	err := &MissingBaseError{Language: "r", Ref: "berth/r:4.2"}
	if !strings.Contains(err.Error(), "berth runtime bootstrap r") || !strings.Contains(err.Error(), "--bootstrap") {
		t.Fatal(err)
	}
}
