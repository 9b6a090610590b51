package api

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/proxy"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
	"github.com/berthproject/berth/internal/service"
	"github.com/berthproject/berth/internal/store"
)

// projectsFixture is a real API with a real store, service manager, engine and proxy, and
// tokens of two projects, alpha and beta.
type projectsFixture struct {
	srv  *httptest.Server
	st   *store.Store
	auth *auth.Auth
	m    *service.Manager
	img  string // the busybox image services are built on
	// Tokens: alpha's member and read-only, beta's member, an admin, and a beta token scoped
	// to beta's service beta-web.
	alpha, alphaRead, beta, admin, betaScoped string
}

func newProjectsFixture(t *testing.T) *projectsFixture {
	t.Helper()
	eng := enginetest.Require(t)
	img := enginetest.Busybox(t, eng)
	u := enginetest.Unique(t)
	labels := enginetest.Labels(t)
	labels["berth.test-run"] = u
	enginetest.Cleanup(t, eng, labels)
	dir := t.TempDir()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key := make([]byte, 32)
	rand.Read(key)
	sealer, err := auth.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	st.SetSealer(sealer) // as the server's store has one: entities are kept sealed
	for _, p := range []string{"alpha", "beta"} {
		if err := st.CreateProject(ctx, store.Project{ID: p}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := service.DefaultConfig(filepath.Join(dir, "services"), "test-"+u)
	cfg.ExtraLabels = labels
	cfg.StopGrace = time.Second
	m := service.New(cfg, st, eng, nil)
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	a := auth.New(st)
	f := &projectsFixture{st: st, auth: a, m: m, img: img}
	issue := func(name, project, role, scope string) string {
		plain, _, err := a.IssueToken(ctx, auth.TokenSpec{Name: name, Project: project, Role: role, Scope: scope})
		if err != nil {
			t.Fatalf("issue %s: %v", name, err)
		}
		return plain
	}
	f.alpha = issue("ann", "alpha", auth.RoleMember, "")
	f.alphaRead = issue("reader", "alpha", auth.RoleReadOnly, "")
	f.beta = issue("bob", "beta", auth.RoleMember, "")
	f.admin = issue("root", "", auth.RoleAdmin, "")
	f.betaScoped = issue("beta-app", "beta", auth.RoleMember, "service:beta-web")
	prx := proxy.New(proxy.Config{Authorize: proxy.Authorize}, m)
	s := New(Config{}, Deps{Jobs: &fakeJobs{jobs: map[string]job.Job{}}, Auth: a, Services: m, Proxy: prx})
	f.srv = httptest.NewServer(s)
	t.Cleanup(f.srv.Close)
	return f
}

// do sends a request with token and returns the status and the body.
func (f *projectsFixture) do(t *testing.T, token, method, path string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// serviceTar is a service folder: a Dockerfile and a container.json.
func serviceTar(dockerfile, containerJSON string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct{ name, body string }{{"Dockerfile", dockerfile}, {"container.json", containerJSON}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(f.body))
	}
	tw.Close()
	return buf.Bytes()
}

// page is a service that serves body at / on 8080.
func (f *projectsFixture) page(body string) []byte {
	return serviceTar(fmt.Sprintf(`FROM %s
USER 0
RUN mkdir -p /www && echo %s > /www/index.html
USER 1000
EXPOSE 8080
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
`, f.img, body), `{"on_demand": true, "storage": 0}`)
}

// envPage is a service that serves its DB env value at / on 8080.
func (f *projectsFixture) envPage(containerJSON string) []byte {
	return serviceTar(fmt.Sprintf(`FROM %s
EXPOSE 8080
CMD ["sh", "-c", "mkdir -p /tmp/www && echo \"db=$DB\" > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"]
`, f.img), containerJSON)
}

func (f *projectsFixture) create(t *testing.T, token, name, pkg string, tarBytes []byte) (int, string) {
	t.Helper()
	q := url.Values{"name": {name}}
	if pkg != "" {
		q.Set("package", pkg)
	}
	return f.do(t, token, "POST", "/api/v1/services?"+q.Encode(), tarBytes)
}

// ready creates a service and waits for its image.
func (f *projectsFixture) ready(t *testing.T, token, name, pkg string, tarBytes []byte) map[string]any {
	t.Helper()
	if code, body := f.create(t, token, name, pkg, tarBytes); code != http.StatusCreated {
		t.Fatalf("create %s: %d %s", name, code, body)
	}
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		code, body := f.do(t, token, "GET", "/api/v1/services/"+name, nil)
		var sv map[string]any
		json.Unmarshal([]byte(body), &sv)
		if code != 200 {
			t.Fatalf("get %s: %d %s", name, code, body)
		}
		switch sv["image_state"] {
		case service.ImageReady:
			return sv
		case service.ImageError:
			t.Fatalf("image of %s: %v", name, sv["image_reason"])
		}
	}
	t.Fatalf("the image of %s is not ready after 3 minutes", name)
	return nil
}

func (f *projectsFixture) names(t *testing.T, token, query string) []string {
	t.Helper()
	code, body := f.do(t, token, "GET", "/api/v1/services"+query, nil)
	if code != 200 {
		t.Fatalf("list%s: %d %s", query, code, body)
	}
	var out struct {
		Services []struct{ Name, Project string }
	}
	json.Unmarshal([]byte(body), &out)
	var names []string
	for _, s := range out.Services {
		names = append(names, s.Project+"/"+s.Name)
	}
	return names
}

// TestServicesOfTwoProjects: neither project sees, starts, stops, rebuilds, deletes, reads
// the logs, build log or context of, or proxies to the other's service, and learns of it
// nothing more than of a service that does not exist; its name is taken (409) and the first
// project's service stays as it was. Read-only may use its project's service, not stop it; a
// scoped token reaches only its service.
func TestServicesOfTwoProjects(t *testing.T) {
	f := newProjectsFixture(t)
	alphaTar := f.page("alpha-secret")
	sv := f.ready(t, f.alpha, "alpha-web", "", alphaTar)
	if sv["project"] != "alpha" {
		t.Errorf("alpha's service shows project %v", sv["project"])
	}
	f.ready(t, f.beta, "beta-web", "", f.page("beta-page"))

	if got := f.names(t, f.alpha, ""); fmt.Sprint(got) != "[alpha/alpha-web]" {
		t.Errorf("alpha lists %v", got)
	}
	if got := f.names(t, f.beta, ""); fmt.Sprint(got) != "[beta/beta-web]" {
		t.Errorf("beta lists %v", got)
	}
	if got := f.names(t, f.admin, ""); fmt.Sprint(got) != "[alpha/alpha-web beta/beta-web]" {
		t.Errorf("the admin lists %v", got)
	}
	if got := f.names(t, f.admin, "?project=beta"); fmt.Sprint(got) != "[beta/beta-web]" {
		t.Errorf("the admin lists beta's as %v", got)
	}
	if code, body := f.do(t, f.beta, "GET", "/api/v1/services?project=alpha", nil); code != 404 {
		t.Errorf("beta lists alpha's services: %d %s", code, body)
	}

	// alpha's service answers alpha through the proxy.
	if code, body := f.do(t, f.alpha, "GET", "/proxy/alpha-web/", nil); code != 200 || !strings.Contains(body, "alpha-secret") {
		t.Fatalf("alpha through the proxy: %d %s", code, body)
	}

	// To beta, alpha's service is as absent as one that does not exist, on every route.
	routes := []struct{ method, path string }{
		{"GET", "/api/v1/services/%s"}, {"POST", "/api/v1/services/%s/start"}, {"POST", "/api/v1/services/%s/stop"},
		{"POST", "/api/v1/services/%s/rebuild"}, {"GET", "/api/v1/services/%s/logs"}, {"GET", "/api/v1/services/%s/build-log"},
		{"GET", "/api/v1/services/%s/context"}, {"DELETE", "/api/v1/services/%s?force=true"}, {"GET", "/proxy/%s/"},
	}
	for _, rt := range routes {
		code, body := f.do(t, f.beta, rt.method, fmt.Sprintf(rt.path, "alpha-web"), nil)
		ncode, nbody := f.do(t, f.beta, rt.method, fmt.Sprintf(rt.path, "no-such"), nil)
		if code != 404 || strings.Contains(body, "alpha-secret") {
			t.Errorf("beta %s %s: %d %s", rt.method, fmt.Sprintf(rt.path, "alpha-web"), code, body)
		}
		if ncode != code || strings.ReplaceAll(nbody, "no-such", "alpha-web") != body {
			t.Errorf("beta %s %s tells a foreign service from a missing one:\n%d %s\n%d %s", rt.method, rt.path, code, body, ncode, nbody)
		}
	}

	// beta cannot take alpha's name: 409, and alpha's service is unchanged.
	code, body := f.create(t, f.beta, "alpha-web", "", f.page("beta-took-it"))
	if code != http.StatusConflict || !strings.Contains(body, `"conflict"`) {
		t.Fatalf("beta creates alpha-web: %d %s", code, body)
	}
	code, body = f.do(t, f.alpha, "GET", "/api/v1/services/alpha-web", nil)
	var after map[string]any
	json.Unmarshal([]byte(body), &after)
	if code != 200 || after["project"] != "alpha" || after["image"] != sv["image"] || after["image_state"] != service.ImageReady {
		t.Errorf("alpha-web after beta's try: %d %s", code, body)
	}
	if code, ctxTar := f.do(t, f.alpha, "GET", "/api/v1/services/alpha-web/context", nil); code != 200 || ctxTar != string(alphaTar) {
		t.Errorf("alpha-web's build context changed: %d", code)
	}
	if code, body := f.do(t, f.alpha, "GET", "/proxy/alpha-web/", nil); code != 200 || !strings.Contains(body, "alpha-secret") {
		t.Errorf("alpha-web after beta's try: %d %s", code, body)
	}

	// Read-only uses its project's service and reads it, and may not stop it.
	if code, body := f.do(t, f.alphaRead, "GET", "/proxy/alpha-web/", nil); code != 200 || !strings.Contains(body, "alpha-secret") {
		t.Errorf("read-only through the proxy: %d %s", code, body)
	}
	if code, _ := f.do(t, f.alphaRead, "GET", "/api/v1/services/alpha-web/logs", nil); code != 200 {
		t.Errorf("read-only reads the logs: %d", code)
	}
	if code, body := f.do(t, f.alphaRead, "POST", "/api/v1/services/alpha-web/stop", nil); code != 403 {
		t.Errorf("read-only stops: %d %s", code, body)
	}

	// A token scoped to beta-web reaches beta-web's proxy and sign-in links, nothing else.
	if code, body := f.do(t, f.betaScoped, "GET", "/proxy/beta-web/", nil); code != 200 || !strings.Contains(body, "beta-page") {
		t.Errorf("scoped token to its service: %d %s", code, body)
	}
	for _, p := range []string{"/proxy/alpha-web/", "/api/v1/services", "/api/v1/services/beta-web", "/api/v1/services/beta-web/logs"} {
		if code, body := f.do(t, f.betaScoped, "GET", p, nil); code != 403 && code != 404 {
			t.Errorf("scoped token GET %s: %d %s", p, code, body)
		}
	}
	if code, body := f.do(t, f.betaScoped, "POST", "/api/v1/signin-links", []byte(`{"next": "/proxy/beta-web/"}`)); code != 201 {
		t.Errorf("scoped token makes a sign-in link: %d %s", code, body)
	}

	// beta deletes its own; alpha cannot have deleted it before.
	if code, body := f.do(t, f.beta, "DELETE", "/api/v1/services/beta-web?force=true", nil); code != 200 {
		t.Errorf("beta deletes its service: %d %s", code, body)
	}
	if code, body := f.do(t, f.alpha, "DELETE", "/api/v1/services/alpha-web?force=true", nil); code != 200 {
		t.Errorf("alpha deletes its service: %d %s", code, body)
	}
}

// TestServiceScopeOfAnotherProject: a token scoped to a service of another project reaches
// nothing of it.
func TestServiceScopeOfAnotherProject(t *testing.T) {
	f := newProjectsFixture(t)
	f.ready(t, f.alpha, "alpha-web", "", f.page("alpha-secret"))
	plain, _, err := f.auth.IssueToken(context.Background(), auth.TokenSpec{Name: "sneaky", Project: "beta", Role: auth.RoleMember, Scope: "service:alpha-web"})
	if err != nil {
		return // refused at issue: nothing to reach with
	}
	if code, body := f.do(t, plain, "GET", "/proxy/alpha-web/", nil); code != 404 || strings.Contains(body, "alpha-secret") {
		t.Errorf("beta's token scoped to alpha's service: %d %s", code, body)
	}
}

// TestEntitiesOfTwoProjects: a member stores entities in its own project; a service resolves
// #{x.pkg:name} only in its own project (the same package and name in two projects are two
// entities), and naming another project's entity is refused at create; a service's package is
// fixed when it is created.
func TestEntitiesOfTwoProjects(t *testing.T) {
	f := newProjectsFixture(t)
	if code, body := f.do(t, f.alpha, "PUT", "/api/v1/packages/shop/entities/Db", []byte(`"alpha-db-password"`)); code != 204 {
		t.Fatalf("alpha's member stores an entity: %d %s", code, body)
	}
	if code, body := f.do(t, f.alphaRead, "PUT", "/api/v1/packages/shop/entities/Db", []byte(`"overwritten"`)); code != 403 {
		t.Errorf("read-only stores an entity: %d %s", code, body)
	}
	if code, body := f.do(t, f.betaScoped, "PUT", "/api/v1/packages/shop/entities/Db", []byte(`"overwritten"`)); code != 403 {
		t.Errorf("a scoped token stores an entity: %d %s", code, body)
	}

	// beta names alpha's entity: refused at create, with the problem named.
	cj := `{"on_demand": true, "storage": 0, "env": {"DB": "#{x.shop:Db}"}}`
	code, body := f.create(t, f.beta, "beta-shop", "shop", f.envPage(cj))
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "env.DB") || !strings.Contains(body, "no entity Db") {
		t.Fatalf("beta's service naming alpha's entity: %d %s", code, body)
	}

	// Each project's service gets its own project's value of shop:Db.
	if code, body := f.do(t, f.beta, "PUT", "/api/v1/packages/shop/entities/Db", []byte(`"beta-db-password"`)); code != 204 {
		t.Fatalf("beta stores its own: %d %s", code, body)
	}
	f.ready(t, f.alpha, "alpha-shop", "shop", f.envPage(cj))
	f.ready(t, f.beta, "beta-shop", "shop", f.envPage(cj))
	if code, body := f.do(t, f.alpha, "GET", "/proxy/alpha-shop/", nil); code != 200 || !strings.Contains(body, "alpha-db-password") {
		t.Errorf("alpha's service: %d %s", code, body)
	}
	if code, body := f.do(t, f.beta, "GET", "/proxy/beta-shop/", nil); code != 200 || !strings.Contains(body, "beta-db-password") {
		t.Errorf("beta's service: %d %s", code, body)
	}

	// The package is fixed at create: replacing the service cannot point it at another.
	if code, body := f.do(t, f.alpha, "PUT", "/api/v1/packages/billing/entities/Key", []byte(`"billing-key"`)); code != 204 {
		t.Fatalf("alpha stores billing:Key: %d %s", code, body)
	}
	moved := `{"on_demand": true, "storage": 0, "env": {"DB": "#{x.billing:Key}"}}`
	code, body = f.create(t, f.alpha, "alpha-shop", "billing", f.envPage(moved))
	if code != http.StatusConflict || !strings.Contains(body, "package shop") {
		t.Errorf("alpha-shop moved to package billing: %d %s", code, body)
	}
	code, body = f.create(t, f.alpha, "alpha-shop", "", f.envPage(moved))
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "own package's (shop)") {
		t.Errorf("alpha-shop replaced without a package reads billing's entity: %d %s", code, body)
	}
	code, body = f.do(t, f.alpha, "GET", "/api/v1/services/alpha-shop", nil)
	if code != 200 || !strings.Contains(body, `"package": "shop"`) {
		t.Errorf("alpha-shop after the tries: %d %s", code, body)
	}
}
