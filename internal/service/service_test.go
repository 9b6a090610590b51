package service_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/proxy"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
	"github.com/berthproject/berth/internal/service"
	"github.com/berthproject/berth/internal/spec"
	"github.com/berthproject/berth/internal/store"
)

type fixture struct {
	eng   *docker.Engine
	st    *store.Store
	cfg   service.Config
	m     *service.Manager
	proxy *httptest.Server
}

func newFixture(t *testing.T, mutate func(*service.Config)) *fixture {
	t.Helper()
	eng := enginetest.Require(t)
	if _, err := eng.InspectImage(context.Background(), "berth/python:3.11"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the python base is missing: `make test` bootstraps it")
		}
		t.Skip("python base not built (berth runtime bootstrap python)")
	}
	f := fixtureOn(t, eng, mutate)
	f.start(t)
	return f
}

// fixtureOn is a service manager of its own instance on eng (its own store and data dir, as a
// berth server has), not started yet; mutate changes its configuration.
func fixtureOn(t *testing.T, eng *docker.Engine, mutate func(*service.Config)) *fixture {
	t.Helper()
	u := enginetest.Unique(t)
	labels := enginetest.Labels(t)
	labels["berth.test-run"] = u
	enginetest.Cleanup(t, eng, labels)
	dir := t.TempDir()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(dir, "b.db"))
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
	cfg := service.DefaultConfig(filepath.Join(dir, "services"), "test-"+u)
	cfg.ExtraLabels = labels
	cfg.CheckInterval = 100 * time.Millisecond
	cfg.StopGrace = time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	return &fixture{eng: eng, st: st, cfg: cfg}
}

func (f *fixture) start(t *testing.T) {
	t.Helper()
	f.m = service.New(f.cfg, f.st, f.eng, nil)
	if err := f.m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.m.Close)
	p := proxy.New(proxy.Config{}, f.m)
	if f.proxy != nil {
		f.proxy.Close()
	}
	f.proxy = httptest.NewServer(p)
	t.Cleanup(f.proxy.Close)
}

// exampleContext is examples/service-echo as a tar, with container.json replaced.
func exampleContext(t *testing.T, containerJSON string, extra map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
	}
	for _, n := range []string{"Dockerfile", "server.py"} {
		b, err := os.ReadFile(filepath.Join("../../examples/service-echo", n))
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := extra[n]; ok {
			b = []byte(v)
		}
		add(n, b)
	}
	if containerJSON != "" {
		add("container.json", []byte(containerJSON))
	}
	tw.Close()
	return buf.Bytes()
}

func (f *fixture) create(t *testing.T, name, containerJSON string) {
	t.Helper()
	if _, err := f.m.Create(context.Background(), "", name, "", exampleContext(t, containerJSON, nil)); err != nil {
		t.Fatal(err)
	}
	f.waitImage(t, name, service.ImageReady)
}

func (f *fixture) waitImage(t *testing.T, name, state string) service.Service {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		s, err := f.m.Get(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if s.ImageState == state {
			return s
		}
		if s.ImageState == service.ImageError {
			t.Fatalf("image failed: %s", s.ImageReason)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("image of %s never reached %s", name, state)
	return service.Service{}
}

func (f *fixture) waitContainer(t *testing.T, name, state string, within time.Duration) service.Service {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s, err := f.m.Get(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if s.ContainerState == state {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("container of %s is %s (%s), never reached %s", name, s.ContainerState, s.ContainerReason, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (f *fixture) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(f.proxy.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func starts(s service.Service) int {
	n := 0
	for _, e := range s.Events {
		if e.Kind == "container" && e.State == service.Starting {
			n++
		}
	}
	return n
}

// TestConcurrentFirstRequestsStartOnce: 20 requests to a stopped on-demand service cause one
// start; all are answered; the container.json fields are applied (inspect).
func TestConcurrentFirstRequestsStartOnce(t *testing.T) {
	f := newFixture(t, nil)
	f.create(t, "echo", `{"on_demand": true, "cpu": 0.5, "memory": 96, "shm_size": 32, "storage": 0, "env": {"GREETING": "hello from berth"}}`)
	var wg sync.WaitGroup
	codes := make([]int, 20)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = f.get(t, "/proxy/echo/hello")
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Fatalf("request %d: %d", i, c)
		}
	}
	s, _ := f.m.Get(context.Background(), "echo")
	if n := starts(s); n != 1 || s.ContainerState != service.Started {
		t.Fatalf("%d starts for 20 concurrent first requests (state %s)", n, s.ContainerState)
	}
	var states []string
	for _, e := range s.Events {
		if e.Kind == "container" {
			states = append(states, e.State)
		}
	}
	if got := strings.Join(states, ","); got != "PENDING_START,STARTING,STARTED" {
		t.Fatalf("transitions %s", got)
	}
	lim, err := f.eng.TaskLimits(context.Background(), runtime.TaskID(s.ContainerID))
	if err != nil || lim.NanoCPUs != 5e8 || lim.MemoryBytes != 96<<20 || lim.ShmSizeBytes != 32<<20 {
		t.Fatalf("applied limits %+v %v", lim, err)
	}
	code, body := f.get(t, "/proxy/echo/a/b?x=1")
	var info map[string]any
	json.Unmarshal([]byte(body), &info)
	if code != 200 || info["path"] != "/a/b?x=1" || info["forwarded_for"] != "127.0.0.1" || info["greeting"] != "hello from berth" {
		t.Fatalf("forwarded request: %d %s", code, body)
	}
}

// TestWebSocketKeepsServiceAliveThenIdleStopAndRestart: an open WebSocket counts as activity;
// once closed the service idles out to SYSTEM_STOPPED and the next request starts it again.
func TestWebSocketKeepsServiceAliveThenIdleStopAndRestart(t *testing.T) {
	f := newFixture(t, nil)
	f.create(t, "ws", `{"on_demand": true, "shutdown_timeout": 0.02, "storage": 0}`) // 1.2 s
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(f.proxy.URL, "http") + "/proxy/ws/ws"
	c, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	echo := func(msg string) {
		t.Helper()
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, b, err := c.Read(ctx)
		if err != nil || string(b) != msg {
			t.Fatalf("echo %q: %q %v", msg, b, err)
		}
	}
	echo("one")
	time.Sleep(4 * time.Second) // more than three shutdown_timeouts, with the socket open
	echo("two")
	if s, _ := f.m.Get(ctx, "ws"); s.ContainerState != service.Started {
		t.Fatalf("service with an open WebSocket is %s", s.ContainerState)
	}
	c.Close(websocket.StatusNormalClosure, "")
	f.waitContainer(t, "ws", service.SystemStopped, 30*time.Second)
	if code, _ := f.get(t, "/proxy/ws/"); code != 200 {
		t.Fatalf("request after idle stop: %d", code)
	}
	s := f.waitContainer(t, "ws", service.Started, 10*time.Second)
	if n := starts(s); n != 2 {
		t.Fatalf("%d starts, want 2 (first request, after idle stop)", n)
	}
}

// TestStreamingResponseIsNotBuffered: the first chunk arrives before the service finished.
func TestStreamingResponseIsNotBuffered(t *testing.T) {
	f := newFixture(t, nil)
	f.create(t, "stream", `{"on_demand": true, "storage": 0}`)
	resp, err := http.Get(f.proxy.URL + "/proxy/stream/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	got := make(chan string, 1)
	go func() { l, _ := br.ReadString('\n'); got <- l }()
	select {
	case l := <-got:
		if l != "first\n" {
			t.Fatalf("first chunk %q", l)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the first chunk was held back: the response is buffered")
	}
	// The service sends the rest only now.
	if code, _ := f.get(t, "/proxy/stream/release"); code != 200 {
		t.Fatal("release failed")
	}
	if l, _ := br.ReadString('\n'); l != "second\n" {
		t.Fatalf("second chunk %q", l)
	}
}

// TestDefinitionsAreCheckedWithClearErrors: two EXPOSEs, a bad container.json, a reference to
// another package's entity.
func TestDefinitionsAreCheckedWithClearErrors(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	df, _ := os.ReadFile("../../examples/service-echo/Dockerfile")
	two := strings.Replace(string(df), "EXPOSE 8080", "EXPOSE 8080 9090", 1)
	_, err := f.m.Create(ctx, "", "two", "", exampleContext(t, "", map[string]string{"Dockerfile": two}))
	if err == nil || !strings.Contains(err.Error(), "exposes 8080, 9090") {
		t.Fatalf("two EXPOSEs: %v", err)
	}
	for cj, field := range map[string]string{
		`{"cpu": "lots"}`:      "cpu",
		`{"on_demand": "yes"}`: "on_demand",
		`{"env": {"A": 1}}`:    "env",
	} {
		_, err := f.m.Create(ctx, "", "bad", "", exampleContext(t, cj, nil))
		var ve *spec.ValidationError
		if !errors.As(err, &ve) || ve.Problems[0].Field != field {
			t.Errorf("%s: %v, want a problem on %s", cj, err, field)
		}
	}
	// Every problem of the Dockerfile and of container.json at once.
	_, err = f.m.Create(ctx, "", "both", "", exampleContext(t, `{"cpu": "lots", "memory": 1}`, map[string]string{"Dockerfile": two}))
	if err == nil || !strings.Contains(err.Error(), "exposes 8080, 9090") || !strings.Contains(err.Error(), "container.json: cpu") ||
		!strings.Contains(err.Error(), "container.json: memory") {
		t.Errorf("every problem: %v", err)
	}
	// An unknown field is a warning; the service is created.
	if sv, err := f.m.Create(ctx, "", "typo", "", exampleContext(t, `{"memroy": 5, "on_demand": true}`, nil)); err != nil ||
		len(sv.Warnings) == 0 || !strings.Contains(strings.Join(sv.Warnings, "\n"), "container.json: memroy: unknown field") {
		t.Errorf("unknown field: %v %v", sv.Warnings, err)
	}
	// What the engine cannot apply is said when the service is created, not silently.
	if _, err := f.m.Create(ctx, "", "gpu", "", exampleContext(t, `{"gpu": 1}`, nil)); err == nil || !strings.Contains(err.Error(), "gpu: cannot be applied") {
		t.Errorf("gpu without a GPU runtime: %v", err)
	}
	if caps, err := f.eng.Capabilities(ctx); err == nil && !caps.StorageQuota {
		sv, err := f.m.Create(ctx, "", "quota", "", exampleContext(t, `{"on_demand": true, "storage": 21}`, nil))
		if err != nil || len(sv.Warnings) != 1 || !strings.Contains(sv.Warnings[0], "storage: the 21 GB root filesystem limit cannot be applied") {
			t.Errorf("storage without quotas: %v %v", sv.Warnings, err)
		}
	}
	f.st.PutEntity(ctx, "", "other", "Db", `{"password": "x"}`)
	_, err = f.m.Create(ctx, "", "mine", "mine", exampleContext(t, `{"env": {"DB": "#{x.other:Db}"}}`, nil))
	if err == nil || !strings.Contains(err.Error(), "package other's entity Db") {
		t.Fatalf("cross-package entity: %v", err)
	}
	if f.m.Exists(ctx, "two") || f.m.Exists(ctx, "both") || f.m.Exists(ctx, "bad") || f.m.Exists(ctx, "mine") || f.m.Exists(ctx, "gpu") {
		t.Fatal("an invalid service was stored")
	}
}

// TestEntityExpressionsResolveAtStart: #{x.Package:Entity} becomes the entity's JSON in the
// container's env.
func TestEntityExpressionsResolveAtStart(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	if err := f.m.PutEntity(ctx, "", "pkg", "Conn", json.RawMessage(`{"host":"db","password":"s3cret"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Create(ctx, "", "ent", "pkg", exampleContext(t, `{"on_demand": true, "storage": 0, "env": {"GREETING": "conn=#{x.pkg:Conn}"}}`, nil)); err != nil {
		t.Fatal(err)
	}
	f.waitImage(t, "ent", service.ImageReady)
	_, body := f.get(t, "/proxy/ent/")
	if !strings.Contains(body, `conn={\"host\":\"db\",\"password\":\"s3cret\"}`) {
		t.Fatalf("env not resolved: %s", body)
	}
	s, _ := f.m.Get(ctx, "ent")
	b, _ := json.Marshal(s)
	if strings.Contains(string(b), "s3cret") {
		t.Fatal("the entity's value shows in the service's view")
	}
}

// TestFailedStartAnswers503WithLogTail and TestStuckStateBecomesError.
func TestFailedStartAndStuckStates(t *testing.T) {
	f := newFixture(t, func(c *service.Config) { c.StuckTimeout = 300 * time.Millisecond })
	ctx := context.Background()
	df, _ := os.ReadFile("../../examples/service-echo/Dockerfile")
	// 50 MB of output before the last line: the tail still shows the last line.
	crash := strings.Replace(string(df), `CMD ["python3", "-u", "/app/server.py"]`,
		`CMD ["sh", "-c", "yes 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde | head -c 50000000; echo boom: no database; exit 3"]`, 1)
	if _, err := f.m.Create(ctx, "", "crash", "", exampleContext(t, `{"on_demand": true, "storage": 0}`, map[string]string{"Dockerfile": crash})); err != nil {
		t.Fatal(err)
	}
	f.waitImage(t, "crash", service.ImageReady)
	resp, err := http.Get(f.proxy.URL + "/proxy/crash/")
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Error struct {
			Message string `json:"message"`
			LogTail string `json:"log_tail"`
		} `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(e.Error.LogTail, "boom: no database") || !strings.Contains(e.Error.Message, "exited with code 3") {
		t.Fatalf("failed start: %d %+v", resp.StatusCode, e)
	}
	if s, _ := f.m.Get(ctx, "crash"); s.ContainerState != service.Error {
		t.Fatalf("state after a failed start: %s", s.ContainerState)
	}
	// A state left hanging (as a crash mid-start would) becomes ERROR with the reason.
	f.st.SetContainerState(ctx, "crash", service.Starting, "", "")
	s := f.waitContainer(t, "crash", service.Error, 10*time.Second)
	if !strings.Contains(s.ContainerReason, "stuck in STARTING") {
		t.Fatalf("reason %q", s.ContainerReason)
	}
}

// TestRestartReadoptsRunningService: a new manager (berth restarted) adopts the running
// container instead of starting another, and it still answers.
func TestRestartReadoptsRunningService(t *testing.T) {
	f := newFixture(t, nil)
	f.create(t, "keep", `{"on_demand": true, "storage": 0}`)
	if code, _ := f.get(t, "/proxy/keep/"); code != 200 {
		t.Fatal("first request failed")
	}
	before, _ := f.m.Get(context.Background(), "keep")
	f.m.Close()
	f.start(t)
	after, _ := f.m.Get(context.Background(), "keep")
	if after.ContainerState != service.Started || after.ContainerID != before.ContainerID {
		t.Fatalf("after restart: %s %s (was %s)", after.ContainerState, after.ContainerID, before.ContainerID)
	}
	if code, _ := f.get(t, "/proxy/keep/"); code != 200 {
		t.Fatal("the re-adopted service does not answer")
	}
	if s, _ := f.m.Get(context.Background(), "keep"); starts(s) != 1 {
		t.Fatalf("%d starts: the restart started it again", starts(s))
	}
}

// TestRequestDuringBuildWaits: a request that arrives while the image is still building waits
// for it instead of failing.
func TestRequestDuringBuildWaits(t *testing.T) {
	f := newFixture(t, nil)
	if _, err := f.m.Create(context.Background(), "", "early", "", exampleContext(t, `{"on_demand": true, "storage": 0}`, nil)); err != nil {
		t.Fatal(err)
	}
	if s, _ := f.m.Get(context.Background(), "early"); s.ImageState == service.ImageReady {
		t.Log("the image was ready before the request; the wait was not exercised")
	}
	if code, body := f.get(t, "/proxy/early/"); code != 200 {
		t.Fatalf("request during the build: %d %s", code, body)
	}
}
