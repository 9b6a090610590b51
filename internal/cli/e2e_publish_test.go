package cli_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/cli"
	"github.com/berthproject/berth/internal/registry"
	"github.com/berthproject/berth/internal/registry/registrytest"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// TestPublishThroughRegistry: a member of p1 publishes a service folder to the real registry
// (Debian's docker-registry, token auth pointed at the berth server) with the berth CLI; the
// server pulls it with its own pull-only token for p1, runs it by digest, and it answers
// through the proxy. After the image is removed from the engine a rebuild pulls it again from
// the registry. A member of p2 can neither push to p1 nor have the server run p1's image.
// Without a registry the image is tagged locally, said in the exact words, and runs from the
// shared engine.
func TestPublishThroughRegistry(t *testing.T) {
	eng := enginetest.Require(t)
	registrytest.Require(t)
	base := enginetest.Busybox(t, eng)
	u := enginetest.Unique(t)[:6]
	dataDir := t.TempDir()
	instance := "test-" + enginetest.Unique(t)
	if err := os.WriteFile(filepath.Join(dataDir, "instance"), []byte(instance+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	name, local := "pub-"+u, "publocal-"+u
	t.Cleanup(func() {
		ctx := context.Background()
		eng.Sweep(ctx, map[string]string{runtime.LabelTest: "1", runtime.LabelInstance: instance})
		for _, n := range []string{name, local} {
			eng.Sweep(ctx, map[string]string{runtime.LabelTest: "1", runtime.LabelService: n})
		}
	})

	// berth's registry key exists before the registry starts (it reads the certificate), the
	// registry's address before berth starts (--registry-host).
	const regService = "berth-e2e-registry"
	iss, err := registry.New(registry.DefaultConfig(regService, dataDir))
	if err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	reg := registrytest.Start(t, registrytest.Auth{Realm: "http://" + addr + "/api/v1/registry/token", Service: regService,
		Issuer: registry.DefaultIssuer, RootCertBundle: iss.CertPath()})
	s := startServer(t, dataDir, addr, "--registry-service", regService, "--registry-host", reg.Host)

	must := func(env []string, args ...string) runResult {
		t.Helper()
		r := berth(t, env, args...)
		if r.code != 0 {
			t.Fatalf("berth %v: %d\n%s\n%s\nserver log:\n%s", args, r.code, r.stdout, r.stderr, s.log.String())
		}
		return r
	}
	must(nil, "project", "create", "p1", "--data-dir", dataDir)
	must(nil, "project", "create", "p2", "--data-dir", dataDir)
	env := func(tok string) []string {
		return []string{"BERTH_SERVER=http://" + addr, "BERTH_TOKEN=" + tok, "BERTH_REGISTRY=",
			"BERTH_CONFIG=" + filepath.Join(dataDir, "no-cli-config.json")}
	}
	tokenOf := func(n, project string) string {
		return strings.TrimSpace(must(nil, "token", "create", "--name", n, "--project", project, "--role", "member", "--data-dir", dataDir).stdout)
	}
	annTok, bobTok := tokenOf("ann", "p1"), tokenOf("bob", "p2")
	ann, bob := env(annTok), env(bobTok)
	ada := env(strings.TrimSpace(must(nil, "token", "create", "--name", "ada", "--project", "p1", "--role", "project-admin", "--data-dir", dataDir).stdout))
	bea := env(strings.TrimSpace(must(nil, "token", "create", "--name", "bea", "--project", "p2", "--role", "project-admin", "--data-dir", dataDir).stdout))

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+base+"\nLABEL berth.test=1\nCOPY index.html /www/index.html\nEXPOSE 8080\n"+
		"CMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("published-"+u+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "container.json"), []byte(`{"on_demand": true}`), 0o644)

	remote := reg.Host + "/p1/" + name + ":1.0.0"
	t.Cleanup(func() {
		ctx := context.Background()
		eng.RemoveImage(ctx, remote)
		eng.RemoveImage(ctx, "p1/"+local+":1.0.0")
	})

	type view struct {
		Image, ImageState, ImageReason string
		Port                           int
	}
	get := func(who []string, n string) view {
		t.Helper()
		var v struct {
			Image       string `json:"image"`
			ImageState  string `json:"image_state"`
			ImageReason string `json:"image_reason"`
			Port        int    `json:"port"`
		}
		r := must(who, "service", "get", n, "-o", "json")
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Fatalf("service get: %v %s", err, r.stdout)
		}
		return view{v.Image, v.ImageState, v.ImageReason, v.Port}
	}
	call := func(tok, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// A member of p2 cannot push into p1: the registry refuses berth's token for p2.
	if r := berth(t, bob, "service", "publish", dir, "--version", "1.0.0", "--name", name, "--project", "p1", "--registry", reg.Host); r.code == 0 ||
		!strings.Contains(r.stderr, "denied") {
		t.Fatalf("bob (p2) published into p1: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// ann publishes to the registry; the server pulls it and pins the digest.
	// (ann's registry comes from her CLI context: berth login, then context set-registry.)
	annCtx := []string{"BERTH_CONFIG=" + filepath.Join(t.TempDir(), "config.json"), "BERTH_REGISTRY=", "BERTH_SERVER=", "BERTH_TOKEN="}
	must(annCtx, "login", "--server", "http://"+addr, "--token", annTok)
	must(annCtx, "context", "set-registry", reg.Host)
	r := must(annCtx, "service", "publish", dir, "--version", "1.0.0", "--name", name)
	t.Logf("berth service publish:\n%s%s", r.stderr, r.stdout)
	if !strings.Contains(r.stderr, "berth: pushed "+remote+" (digest sha256:") {
		t.Fatalf("publish printed no push:\n%s", r.stderr)
	}
	digest := r.stderr[strings.Index(r.stderr, "(digest ")+len("(digest "):]
	digest = digest[:strings.Index(digest, ")")]
	if strings.Contains(r.stderr, cli.NoRegistryMessage) {
		t.Fatalf("publish with a registry said %q:\n%s", cli.NoRegistryMessage, r.stderr)
	}
	v := get(ann, name)
	if want := reg.Host + "/p1/" + name + "@" + digest; v.ImageState != "READY" || v.Image != want || v.Port != 8080 {
		t.Fatalf("after publish: %+v, want READY on %s port 8080\n%s", v, want, r.stderr)
	}
	if code, body := call(annTok, "/proxy/"+name+"/"); code != 200 || body != "published-"+u+"\n" {
		t.Fatalf("through the proxy: %d %q", code, body)
	}

	// A member of p2 cannot have the server run p1's image, by registry or by local tag.
	for _, ref := range []string{remote, reg.Host + "/p1/" + name + "@" + digest, "p1/" + name + ":1.0.0"} {
		q := url.Values{"name": {"bob-" + u}, "image": {ref}}
		req, _ := http.NewRequest("POST", "http://"+addr+"/api/v1/services?"+q.Encode(), strings.NewReader(""))
		req.Header.Set("Authorization", "Bearer "+bobTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("bob (p2) registered a service on %s: %d %s", ref, resp.StatusCode, b)
		}
	}

	// The image gone from the engine, a rebuild pulls it from the registry again.
	must(ann, "service", "stop", name)
	ctx := context.Background()
	if err := eng.RemoveImage(ctx, remote); err != nil {
		t.Fatal(err)
	}
	if err := eng.RemoveImage(ctx, v.Image); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.InspectImage(ctx, v.Image); err == nil {
		t.Fatalf("%s is still on the engine", v.Image)
	}
	must(ann, "service", "rebuild", name)
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if v = get(ann, name); v.ImageState == "READY" || v.ImageState == "ERROR" || time.Now().After(deadline) {
			break
		}
	}
	if v.ImageState != "READY" || !strings.HasSuffix(v.Image, "@"+digest) {
		t.Fatalf("after rebuild: %+v\n%s", v, must(ann, "service", "build-log", name).stdout)
	}
	log := must(ann, "service", "build-log", name).stdout
	t.Logf("build log of the pull:\n%s", log)
	if !strings.Contains(log, "pulling "+remote) || !strings.Contains(log, "Pull complete") {
		t.Fatalf("the build log shows no pull from the registry:\n%s", log)
	}
	if code, body := call(annTok, "/proxy/"+name+"/"); code != 200 || body != "published-"+u+"\n" {
		t.Fatalf("through the proxy after the pull: %d %q", code, body)
	}

	// Without a registry: tagged locally, said plainly, and run from the shared engine.
	r = must(ann, "service", "publish", dir, "--version", "1.0.0", "--name", local)
	if !strings.Contains(r.stderr, "\n"+cli.NoRegistryMessage+"\n") || cli.NoRegistryMessage != "No registry configured. Image tagged locally only." {
		t.Fatalf("publish without a registry did not say %q:\n%s", cli.NoRegistryMessage, r.stderr)
	}
	v = get(ann, local)
	if img, err := eng.InspectImage(ctx, "p1/"+local+":1.0.0"); err != nil || v.ImageState != "READY" || v.Image != img.ID {
		t.Fatalf("local publish: %+v (local tag: %v)", v, err)
	}
	if code, body := call(annTok, "/proxy/"+local+"/"); code != 200 || body != "published-"+u+"\n" {
		t.Fatalf("local publish through the proxy: %d %q", code, body)
	}

	// A component published by p1's project admin runs for p1 from the registry, pulled again
	// after it left the engine. p2's project admin may name it in a component of p2's, but
	// the run is refused: the server's pull token is p2's, and the registry refuses it.
	cid := "pubc-" + u
	comp := t.TempDir()
	os.WriteFile(filepath.Join(comp, "Dockerfile"), []byte("FROM "+base+"\nLABEL berth.test=1\nCOPY run.sh /run.sh\nENTRYPOINT [\"sh\", \"/run.sh\"]\n"), 0o644)
	os.WriteFile(filepath.Join(comp, "run.sh"), []byte(`echo '{"n": "`+u+`"}' > /data/out/state.json`+"\n"), 0o644)
	os.WriteFile(filepath.Join(comp, "component.json"), []byte(`{"id": "`+cid+`", "image": ""}`), 0o644)
	compRef := reg.Host + "/p1/" + cid + ":2.0.0"
	t.Cleanup(func() { eng.RemoveImage(context.Background(), compRef) })
	if r := must(ada, "component", "publish", comp, "--version", "2.0.0", "--registry", reg.Host); !strings.Contains(r.stdout, "registered "+cid+" (image "+compRef+")") {
		t.Fatalf("component publish: %s\n%s", r.stdout, r.stderr)
	}
	if err := eng.RemoveImage(ctx, compRef); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(cfg, []byte(`{"id": "`+cid+`-cfg", "component": "`+cid+`"}`), 0o644)
	must(ann, "config", "create", cfg)
	must(ann, "config", "run", cid+"-cfg", "--wait")
	if r := must(ann, "config", "state", cid+"-cfg"); strings.TrimSpace(r.stdout) != `{"n": "`+u+`"}` {
		t.Fatalf("the published component's state: %q", r.stdout)
	}
	bobComp := filepath.Join(t.TempDir(), "component.json")
	os.WriteFile(bobComp, []byte(`{"id": "`+cid+`-bob", "image": "`+compRef+`"}`), 0o644)
	must(bea, "component", "register", bobComp)
	os.WriteFile(cfg, []byte(`{"id": "`+cid+`-bobcfg", "component": "`+cid+`-bob"}`), 0o644)
	must(bob, "config", "create", cfg)
	if r := berth(t, bob, "config", "run", cid+"-bobcfg", "--wait"); r.code == 0 || !strings.Contains(r.stdout+r.stderr, "is not project p2's") {
		t.Fatalf("p2 ran p1's published component image: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
