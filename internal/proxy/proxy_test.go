package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/authz"
	"github.com/berthproject/berth/internal/spec"
)

// fakeServices is a scriptable service manager for the proxy's own logic; the real manager and
// engine are exercised in internal/service.
type fakeServices struct {
	addr    string
	ensures atomic.Int32
	active  atomic.Int32
	fail    error
	modes   map[string]spec.PrefixMode // by service; "svc" exists always
}

func (f *fakeServices) Project(name string) (string, bool) {
	_, ok := f.modes[name]
	return "p", ok || name == "svc"
}
func (f *fakeServices) Addr(name string) string { return "" }
func (f *fakeServices) Mode(name string) spec.PrefixMode {
	return f.modes[name]
}
func (f *fakeServices) Ensure(ctx context.Context, name string) (string, error) {
	f.ensures.Add(1)
	return f.addr, f.fail
}
func (f *fakeServices) Track(name string) func() {
	f.active.Add(1)
	return func() { f.active.Add(-1) }
}

type failure struct{}

func (failure) Error() string { return "the container exited with code 3" }
func (failure) Tail() string  { return "boom" }

func TestProxyForwarding(t *testing.T) {
	release := make(chan struct{})
	var seen http.Header
	var mu sync.Mutex
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Header.Clone()
		mu.Unlock()
		switch r.URL.Path {
		case "/slow":
			time.Sleep(2 * time.Second)
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: one\n\n")
			w.(http.Flusher).Flush()
			<-release
			io.WriteString(w, "data: two\n\n")
			return
		}
		io.WriteString(w, r.Method+" "+r.URL.RequestURI())
	}))
	defer backend.Close()
	fs := &fakeServices{addr: strings.TrimPrefix(backend.URL, "http://")}
	p := New(Config{RequestTimeout: 300 * time.Millisecond, Authorize: func(r *http.Request, s, project string) error {
		if r.Header.Get("X-Deny") != "" {
			return errors.New("not yours")
		}
		return nil
	}}, fs)
	front := httptest.NewServer(p)
	defer front.Close()

	req, _ := http.NewRequest("DELETE", front.URL+"/proxy/svc/a/b?c=1", nil)
	req.Header.Set("Authorization", "Bearer secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "DELETE /a/b?c=1" {
		t.Fatalf("prefix not stripped or method lost: %q", b)
	}
	mu.Lock()
	if seen.Get("Authorization") != "" || seen.Get("X-Forwarded-For") == "" || seen.Get("X-Forwarded-Prefix") != "/proxy/svc" {
		t.Fatalf("headers to the service: %v", seen)
	}
	mu.Unlock()

	// A plain request is cut at the timeout; an event stream is not, and is not buffered.
	resp, _ = http.Get(front.URL + "/proxy/svc/slow")
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("slow request: %d", resp.StatusCode)
	}
	resp.Body.Close()
	req, _ = http.NewRequest("GET", front.URL+"/proxy/svc/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if l, _ := br.ReadString('\n'); l != "data: one\n" {
		t.Fatalf("first event %q", l)
	}
	if fs.active.Load() != 1 {
		t.Fatalf("an open stream is not counted as activity (%d)", fs.active.Load())
	}
	time.Sleep(500 * time.Millisecond) // longer than the request timeout
	close(release)
	br.ReadString('\n')
	if l, _ := br.ReadString('\n'); l != "data: two\n" {
		t.Fatalf("the stream was cut: %q", l)
	}
	resp.Body.Close()

	// Unknown service, refused principal, failed start.
	if resp, _ := http.Get(front.URL + "/proxy/other/"); resp.StatusCode != 404 {
		t.Fatalf("unknown service: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest("GET", front.URL+"/proxy/svc/", nil)
	req.Header.Set("X-Deny", "1")
	if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != 403 {
		t.Fatalf("refused: %d", resp.StatusCode)
	}
	fs.fail = failure{}
	resp, _ = http.Get(front.URL + "/proxy/svc/")
	b, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || !strings.Contains(string(b), `"log_tail":"boom"`) || !strings.Contains(string(b), "exited with code 3") {
		t.Fatalf("failed start: %d %s", resp.StatusCode, b)
	}
}

// TestProxyAsksWithTheServiceProject: the authorizer is asked with the service's project (from
// memory), a refusal keeps its status, and a name no service has is asked about with a project
// nobody has, so a caller refused a foreign service gets the same answer as for a missing one.
func TestProxyAsksWithTheServiceProject(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer backend.Close()
	var asked []string
	p := New(Config{Authorize: func(r *http.Request, s, project string) error {
		asked = append(asked, s+"@"+project)
		if project != r.Header.Get("X-Project") {
			return &authz.Denied{Status: http.StatusNotFound, Reason: "service " + s + " not found"}
		}
		if r.Header.Get("X-Deny") != "" {
			return &authz.Denied{Status: http.StatusForbidden, Reason: "read-only"}
		}
		return nil
	}}, &fakeServices{addr: strings.TrimPrefix(backend.URL, "http://")})
	front := httptest.NewServer(p)
	defer front.Close()
	get := func(path, project, deny string) (int, string) {
		req, _ := http.NewRequest("GET", front.URL+path, nil)
		req.Header.Set("X-Project", project)
		req.Header.Set("X-Deny", deny)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/proxy/svc/", "p", ""); code != 200 || body != "ok" {
		t.Fatalf("own project: %d %s", code, body)
	}
	if code, _ := get("/proxy/svc/", "p", "1"); code != 403 {
		t.Errorf("a 403 refusal: %d", code)
	}
	code, foreign := get("/proxy/svc/", "other", "")
	ncode, missing := get("/proxy/nope/", "other", "")
	if code != 404 || ncode != 404 || strings.ReplaceAll(missing, "nope", "svc") != foreign {
		t.Errorf("foreign %d %s, missing %d %s", code, foreign, ncode, missing)
	}
	if asked[0] != "svc@p" || strings.HasSuffix(asked[len(asked)-1], "@p") || !strings.HasPrefix(asked[len(asked)-1], "nope@") {
		t.Errorf("asked %v", asked)
	}
}
