package api

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/store"
)

// fakeJobs is a scriptable job service: the API's handlers are tested against it; the real
// manager is exercised end to end in internal/cli.
type fakeJobs struct {
	mu     sync.Mutex
	jobs   map[string]job.Job
	subs   []job.Submission
	chunks []job.LogChunk
	live   chan job.LogChunk // follow delivers these, then returns
}

func (f *fakeJobs) Submit(ctx context.Context, s job.Submission) (job.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.Block.Network == "bridge" {
		return job.Job{}, &job.PolicyError{Field: "network", Message: "not allowed"}
	}
	f.subs = append(f.subs, s)
	j := job.Job{ID: "j" + string(rune('0'+len(f.jobs))), Kind: job.KindBlock, Name: s.Block.Name, Owner: s.Owner, Project: s.Project, State: job.StateQueued,
		Block: s.Block, CreatedAt: time.Now().UTC()}
	f.jobs[j.ID] = j
	return j, nil
}

func (f *fakeJobs) Get(ctx context.Context, id string) (job.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[id]
	if !ok {
		return j, job.ErrNotFound
	}
	return j, nil
}

func (f *fakeJobs) List(ctx context.Context, o job.ListOptions) ([]job.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []job.Job
	for _, j := range f.jobs {
		if (o.Owner == "" || j.Owner == o.Owner) && (o.State == "" || j.State == o.State) && (o.Project == "" || j.Project == o.Project) {
			out = append(out, j)
		}
	}
	return out, nil
}

func (f *fakeJobs) Cancel(ctx context.Context, id string) (job.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[id]
	if !ok {
		return j, job.ErrNotFound
	}
	if j.State.Terminal() {
		return j, job.ErrTerminal
	}
	j.State = job.StateCancelled
	f.jobs[id] = j
	return j, nil
}

func (f *fakeJobs) Logs(ctx context.Context, id string, follow bool, fn func(job.LogChunk) error) error {
	for _, c := range f.chunks {
		if err := fn(c); err != nil {
			return err
		}
	}
	if follow && f.live != nil {
		for c := range f.live {
			if err := fn(c); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *fakeJobs) Counts(ctx context.Context) (map[job.State]int, error) {
	return map[job.State]int{job.StateQueued: 2, job.StateSucceeded: 5}, nil
}

type fixture struct {
	srv          *httptest.Server
	jobs         *fakeJobs
	admin, user  string
	adminSrvSide *Server
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := auth.New(st)
	admin, _, _ := a.Issue(context.Background(), "root", auth.RoleAdmin, "")
	user, _, _ := a.Issue(context.Background(), "ann", auth.RoleUser, "")
	fj := &fakeJobs{jobs: map[string]job.Job{}}
	logPath := filepath.Join(t.TempDir(), "abc.log")
	os.WriteFile(logPath, []byte("Step 1/3 : FROM berth/python:3.11\n"), 0o644)
	s := New(Config{ShareRoot: "/share", KeepAlive: 50 * time.Millisecond}, Deps{Jobs: fj, Auth: a,
		ImageStats: func() (int64, int64, int64) { return 3, 7, 1 },
		BuildLog: func(h string) (string, error) {
			if h == "abc" {
				return logPath, nil
			}
			return "", os.ErrNotExist
		}})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, jobs: fj, admin: admin, user: user, adminSrvSide: s}
}

func (f *fixture) do(t *testing.T, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func errCode(m map[string]any) (string, string) {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	f, _ := e["field"].(string)
	return c, f
}

const validSpec = `{"spec": "name: hello\nlanguage: shell\nscript: main.sh\n", "filename": "block.yaml", "files": {"main.sh": "echo hi\n"}}`

func TestAuthAndHealth(t *testing.T) {
	f := newFixture(t)
	if code, m := f.do(t, "GET", "/healthz", "", ""); code != 200 || m["status"] != "ok" {
		t.Fatalf("healthz: %d %v", code, m)
	}
	for _, p := range []string{"/api/v1/jobs", "/metrics", "/api/v1/jobs/x"} {
		if code, m := f.do(t, "GET", p, "", ""); code != 401 {
			t.Errorf("%s without a token: %d %v", p, code, m)
		}
	}
	if code, m := f.do(t, "GET", "/api/v1/nothing", f.admin, ""); code != 404 {
		t.Errorf("unknown route: %d %v", code, m)
	}
	if code, m := f.do(t, "DELETE", "/api/v1/jobs", f.admin, ""); code != 405 {
		t.Errorf("wrong method: %d %v", code, m)
	} else if c, _ := errCode(m); c != "method_not_allowed" {
		t.Errorf("405 body %v", m)
	}
}

func TestSubmitValidationAndPolicy(t *testing.T) {
	f := newFixture(t)
	code, m := f.do(t, "POST", "/api/v1/jobs", f.user, validSpec)
	if code != 201 || m["state"] != "queued" || m["owner"] != "ann" {
		t.Fatalf("submit: %d %v", code, m)
	}
	s := f.jobs.subs[0]
	if s.BaseDir != "/share" || string(s.Files["main.sh"]) != "echo hi\n" || s.Owner != "ann" {
		t.Fatalf("submission %+v", s)
	}
	code, m = f.do(t, "POST", "/api/v1/jobs", f.user, `{"spec": "name: x\nlanguage: cobol\ncode: x\n"}`)
	if c, field := errCode(m); code != 422 || c != "invalid_spec" || field != "language" {
		t.Fatalf("invalid spec: %d %v", code, m)
	}
	code, m = f.do(t, "POST", "/api/v1/jobs", f.user, `{"spec": "name: x\nlanguage: shell\ncode: x\nnetwork: bridge\n"}`)
	if c, field := errCode(m); code != 422 || c != "policy_violation" || field != "network" {
		t.Fatalf("policy: %d %v", code, m)
	}
	if code, m = f.do(t, "POST", "/api/v1/jobs", f.user, `not json`); code != 400 {
		t.Fatalf("bad json: %d %v", code, m)
	}
}

// Members see every job of their project (the admin's too, when it is of their project), and
// nothing of another project (TestProjectsIsolateJobs).
func TestMembersSeeTheirProjectsJobs(t *testing.T) {
	f := newFixture(t)
	_, adminJob := f.do(t, "POST", "/api/v1/jobs", f.admin, validSpec)
	_, userJob := f.do(t, "POST", "/api/v1/jobs", f.user, validSpec)
	if code, _ := f.do(t, "GET", "/api/v1/jobs/"+adminJob["id"].(string), f.user, ""); code != 200 {
		t.Fatalf("a member cannot see a job of its project: %d", code)
	}
	if code, _ := f.do(t, "GET", "/api/v1/jobs/"+userJob["id"].(string), f.admin, ""); code != 200 {
		t.Fatalf("the admin cannot see a user's job: %d", code)
	}
	_, m := f.do(t, "GET", "/api/v1/jobs", f.user, "")
	if jobs := m["jobs"].([]any); len(jobs) != 2 {
		t.Fatalf("user list: %v", m)
	}
	_, m = f.do(t, "GET", "/api/v1/jobs?owner=ann", f.user, "")
	if jobs := m["jobs"].([]any); len(jobs) != 1 {
		t.Fatalf("user list ?owner=ann: %v", m)
	}
	_, m = f.do(t, "GET", "/api/v1/jobs", f.admin, "")
	if jobs := m["jobs"].([]any); len(jobs) != 2 {
		t.Fatalf("admin list: %v", m)
	}
	if code, m := f.do(t, "GET", "/api/v1/jobs?state=bogus", f.admin, ""); code != 400 || !strings.Contains(m["error"].(map[string]any)["message"].(string), "succeeded") {
		t.Fatalf("bad state: %d %v", code, m)
	}
	id := userJob["id"].(string)
	if code, m := f.do(t, "POST", "/api/v1/jobs/"+id+"/cancel", f.user, ""); code != 200 || m["state"] != "cancelled" {
		t.Fatalf("cancel: %d %v", code, m)
	}
	if code, m := f.do(t, "POST", "/api/v1/jobs/"+id+"/cancel", f.user, ""); code != 409 {
		t.Fatalf("cancel twice: %d %v", code, m)
	}
	if code, _ := f.do(t, "GET", "/api/v1/jobs/nope", f.admin, ""); code != 404 {
		t.Fatalf("absent job: %d", code)
	}
}

func TestLogsJSONAndSSE(t *testing.T) {
	f := newFixture(t)
	_, j := f.do(t, "POST", "/api/v1/jobs", f.admin, validSpec)
	id := j["id"].(string)
	f.jobs.chunks = []job.LogChunk{{Stream: "stdout", Text: "one\n"}, {Stream: "stderr", Text: "two\n"}}
	_, m := f.do(t, "GET", "/api/v1/jobs/"+id+"/logs", f.admin, "")
	if cs := m["chunks"].([]any); len(cs) != 2 {
		t.Fatalf("chunks: %v", m)
	}
	f.jobs.live = make(chan job.LogChunk)
	req, _ := http.NewRequest("GET", f.srv.URL+"/api/v1/jobs/"+id+"/logs?follow=1", nil)
	req.Header.Set("Authorization", "Bearer "+f.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	var events []string
	next := func() string {
		for sc.Scan() {
			if e, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				return e
			}
		}
		return ""
	}
	events = append(events, next(), next())
	// A live chunk arrives while the stream is open (not buffered until the end).
	go func() { f.jobs.live <- job.LogChunk{Stream: "stdout", Text: "three\n"} }()
	events = append(events, next())
	close(f.jobs.live)
	events = append(events, next())
	if strings.Join(events, ",") != "stdout,stderr,stdout,end" {
		t.Fatalf("events %v", events)
	}
}

func TestMetrics(t *testing.T) {
	f := newFixture(t)
	f.adminSrvSide.ObserveJob(job.Job{State: job.StateSucceeded, CreatedAt: time.Now().Add(-3 * time.Second), StartedAt: ptr(time.Now().Add(-time.Second)), FinishedAt: ptr(time.Now())})
	req, _ := http.NewRequest("GET", f.srv.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+f.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		sb.WriteString(sc.Text() + "\n")
	}
	body := sb.String()
	for _, want := range []string{`berth_jobs{state="queued"} 2`, `berth_jobs{state="succeeded"} 5`, `berth_jobs{state="running"} 0`,
		`berth_image_builds_total 3`, `berth_image_cache_hits_total 7`, `berth_image_build_failures_total 1`,
		`berth_job_duration_seconds_count{reason="",state="succeeded"} 1`,
		`berth_queue_depth 2`, `berth_queue_wait_seconds_count 1`, `berth_queue_wait_seconds_bucket{le="1"} 0`, `berth_queue_wait_seconds_bucket{le="2.5"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func ptr(t time.Time) *time.Time { return &t }

func TestBuildLog(t *testing.T) {
	f := newFixture(t)
	// No job of ann's project used image abc (TestBuildLogOfProjectsImages has one that did).
	if code, _ := f.do(t, "GET", "/api/v1/images/abc/build-log", f.user, ""); code != 404 {
		t.Fatalf("a build log of an image no job of the caller's project used: %d", code)
	}
	req, _ := http.NewRequest("GET", f.srv.URL+"/api/v1/images/abc/build-log", nil)
	req.Header.Set("Authorization", "Bearer "+f.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "FROM berth/python") {
		t.Fatalf("build log: %d %s", resp.StatusCode, b)
	}
	if code, _ := f.do(t, "GET", "/api/v1/images/zzz/build-log", f.admin, ""); code != 404 {
		t.Fatalf("absent log: %d", code)
	}
}

func TestBodyTooLarge(t *testing.T) {
	f := newFixture(t)
	big := `{"spec": "` + strings.Repeat("a", 33<<20) + `"}`
	code, m := f.do(t, "POST", "/api/v1/jobs", f.user, big)
	if c, _ := errCode(m); code != 413 || c != "too_large" {
		t.Fatalf("too large: %d %v", code, m)
	}
}

// blockingLogs sends one chunk, then follows until its context ends.
type blockingLogs struct {
	*fakeJobs
	ended chan error
}

func (b blockingLogs) Logs(ctx context.Context, id string, follow bool, fn func(job.LogChunk) error) error {
	fn(job.LogChunk{Stream: "stdout", Text: "x\n"})
	<-ctx.Done()
	b.ended <- ctx.Err()
	return ctx.Err()
}

func TestSSEKeepAliveAndDisconnect(t *testing.T) {
	f := newFixture(t)
	_, j := f.do(t, "POST", "/api/v1/jobs", f.admin, validSpec)
	bl := blockingLogs{fakeJobs: f.jobs, ended: make(chan error, 1)}
	f.adminSrvSide.d.Jobs = bl
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/api/v1/jobs/"+j["id"].(string)+"/logs", nil)
	req.Header.Set("Authorization", "Bearer "+f.admin)
	req.Header.Set("Accept", "text/event-stream") // follow without ?follow=1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("headers %v", resp.Header)
	}
	sc := bufio.NewScanner(resp.Body)
	var lines []string
	for sc.Scan() && sc.Text() != ": keep-alive" {
		lines = append(lines, sc.Text())
	}
	if len(lines) < 2 || lines[0] != "event: stdout" || !strings.HasPrefix(lines[1], `data: {"stream":"stdout","text":"x\n"`) {
		t.Fatalf("before the keep-alive: %q", lines)
	}
	cancel()
	select {
	case err := <-bl.ended:
		if err == nil {
			t.Fatal("Logs ended without a context error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a client disconnect did not cancel Logs")
	}
}
