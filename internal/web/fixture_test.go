package web_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/api"
	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/block"
	"github.com/berthproject/berth/internal/component"
	"github.com/berthproject/berth/internal/image"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/job/jobtest"
	"github.com/berthproject/berth/internal/proxy"
	"github.com/berthproject/berth/internal/service"
	"github.com/berthproject/berth/internal/storage"
	"github.com/berthproject/berth/internal/store"
)

// fixture is a real berth server in the test: the API with the dashboard mounted, a real
// store, job manager (blocks run in the test busybox image), service manager, proxy and
// engine, and tokens of two projects.
type fixture struct {
	srv    *httptest.Server
	h      *jobtest.Harness
	svcs   *service.Manager
	auth   *auth.Auth
	stor   *storage.Storage
	images *image.Records
	// Tokens: alpha's member ann, alpha's read-only reader, beta's member bob, an admin.
	alpha, alphaRead, beta, admin string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	var stor *storage.Storage
	// Blocks and components (a component is an image on the engine, e.g. the test busybox).
	h := jobtest.New(t, nil, func(hh *jobtest.Harness) map[string]job.Executor {
		var err error
		if stor, err = storage.New(hh.St, filepath.Join(t.TempDir(), "storage")); err != nil {
			t.Fatal(err)
		}
		return map[string]job.Executor{job.KindBlock: block.New(), job.KindComponent: component.New(component.Config{Storage: stor})}
	})
	ctx := context.Background()
	for _, p := range []string{"alpha", "beta"} {
		if err := h.St.CreateProject(ctx, store.Project{ID: p}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := service.DefaultConfig(filepath.Join(t.TempDir(), "services"), h.Instance)
	cfg.ExtraLabels = map[string]string{"berth.test": "1"}
	cfg.StopGrace = time.Second
	m := service.New(cfg, h.St, h.Eng, nil)
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	a := auth.New(h.St)
	f := &fixture{h: h, svcs: m, auth: a}
	issue := func(name, project, role string) string {
		plain, _, err := a.IssueToken(ctx, auth.TokenSpec{Name: name, Project: project, Role: role})
		if err != nil {
			t.Fatalf("issue %s: %v", name, err)
		}
		return plain
	}
	f.alpha = issue("ann", "alpha", auth.RoleMember)
	f.alphaRead = issue("reader", "alpha", auth.RoleReadOnly)
	f.beta = issue("bob", "beta", auth.RoleMember)
	f.admin = issue("root", "", auth.RoleAdmin)
	prx := proxy.New(proxy.Config{Authorize: proxy.Authorize}, m)
	f.stor = stor
	// The image records of this test's instance; the test busybox image is recorded as used.
	f.images = image.NewRecords(h.Eng, h.St, h.Instance, nil)
	if img, err := h.Eng.InspectImage(ctx, h.Img); err == nil {
		f.images.Used(ctx, h.Img, img)
	}
	caps, err := h.Eng.Capabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := api.New(api.Config{ShareRoot: h.Cfg.ShareRoots[0]}, api.Deps{Jobs: h.M, Auth: a, Services: m, Proxy: prx,
		Store: h.St, Storage: stor, Images: image.NewCollector(f.images, image.Policy{Limit: 20 << 30, Low: 16 << 30}), Engine: &caps})
	f.srv = httptest.NewServer(s)
	t.Cleanup(f.srv.Close)
	return f
}

// submit submits a shell block running code in busybox through the API, as token.
func (f *fixture) submit(t *testing.T, token, name, code string) job.Job {
	t.Helper()
	specYAML := fmt.Sprintf("name: %s\nlanguage: shell\nimage: %s\ncode: |\n%s", name, f.h.Img, indent(code))
	body, _ := json.Marshal(map[string]string{"spec": specYAML})
	status, out := f.call(t, token, "POST", "/api/v1/jobs", "application/json", body)
	if status != http.StatusCreated {
		t.Fatalf("submit %s: %d %s", name, status, out)
	}
	var j job.Job
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatal(err)
	}
	return j
}

func indent(code string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(code, "\n"), "\n") {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}

// wait waits for a job's end.
func (f *fixture) wait(t *testing.T, id string) job.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	j, err := f.h.M.Wait(ctx, id)
	if err != nil {
		t.Fatalf("wait for %s: %v", id, err)
	}
	return j
}

// call sends a request with a bearer token and returns the status and the body.
func (f *fixture) call(t *testing.T, token, method, path, ctype string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// page GETs a dashboard page as a browser would (Accept: text/html), with a bearer token, and
// returns the response (body read) without following redirects.
func (f *fixture) page(t *testing.T, token, path string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", f.srv.URL+path, nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// createService creates a busybox httpd service (on demand) through the API as token and
// waits for its image to be READY.
func (f *fixture) createService(t *testing.T, token, name string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		f.svcs.Stop(ctx, name, false)
	})
	dockerfile := fmt.Sprintf(`FROM %s
EXPOSE 8080
CMD ["sh", "-c", "mkdir -p /tmp/www && echo hello from %s > /tmp/www/index.html && echo %s serving on 8080 && exec httpd -f -p 8080 -h /tmp/www"]
`, f.h.Img, name, name)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, fl := range []struct{ name, body string }{{"Dockerfile", dockerfile}, {"container.json", `{"on_demand": true, "storage": 0}`}} {
		tw.WriteHeader(&tar.Header{Name: fl.name, Mode: 0o644, Size: int64(len(fl.body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(fl.body))
	}
	tw.Close()
	status, out := f.call(t, token, "POST", "/api/v1/services?name="+name+"&package=web", "application/x-tar", buf.Bytes())
	if status != http.StatusCreated {
		t.Fatalf("create service %s: %d %s", name, status, out)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		sv, err := f.svcs.Get(context.Background(), name)
		if err == nil && sv.ImageState == service.ImageReady {
			return
		}
		if err == nil && sv.ImageState == service.ImageError {
			t.Fatalf("service %s image: %s", name, sv.ImageReason)
		}
		if time.Now().After(deadline) {
			t.Fatalf("service %s: image not ready in time: %+v %v", name, sv, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
