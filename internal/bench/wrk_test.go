package bench

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// wrk's text reports (Debian's wrk 4.1, --latency), as the bench reads them; the socket-errors
// one is written by hand in the same format (wrk prints that line only when they happen).
func TestParseWrk(t *testing.T) {
	for _, c := range []struct {
		file     string
		rps      float64
		requests int64
		errors   int64
		p50      time.Duration
	}{
		{"testdata/wrk-ok.txt", 7690.05, 7719, 0, 106 * time.Microsecond},
		{"testdata/wrk-non2xx.txt", 10634.97, 10665, 10665, 79 * time.Microsecond},
		{"testdata/wrk-socket-errors.txt", 1203.5, 3611, 7, 1500 * time.Microsecond},
	} {
		b, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		r, err := parseWrk(string(b))
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if r.RPS != c.rps || r.Requests != c.requests || r.Errors != c.errors || r.P50Latency != c.p50 {
			t.Errorf("%s: got %+v, want rps %v requests %d errors %d p50 %v", c.file, r, c.rps, c.requests, c.errors, c.p50)
		}
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Error("a report without Requests/sec was accepted")
	}
}

// The bench's nginx forwards the proxy path to the upstream with the prefix stripped, without
// berth's token, with the forwarded headers berth's proxy sets, over kept-alive connections.
func TestNginxReference(t *testing.T) {
	if _, err := exec.LookPath("nginx"); err != nil {
		if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
			t.Skip("nginx is not installed (scripts/bench-prereqs.sh installs it)")
		}
	}
	var mu sync.Mutex
	var seen []*http.Request
	conns := map[string]bool{}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r)
		conns[r.RemoteAddr] = true
		mu.Unlock()
		io.WriteString(w, "ok "+r.URL.RequestURI())
	}))
	defer backend.Close()
	nx, err := startNginx(t.Context(), strings.TrimPrefix(backend.URL, "http://"), "/proxy/echo/", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer nx.Stop()
	for range 5 {
		req, _ := http.NewRequest("GET", "http://"+nx.Addr+"/proxy/echo/healthz?x=1", nil)
		req.Header.Set("Authorization", "Bearer secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "ok /healthz?x=1" {
			t.Fatalf("through nginx: %d %q", resp.StatusCode, b)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	r := seen[0]
	if r.Header.Get("Authorization") != "" || r.Header.Get("X-Forwarded-Prefix") != "/proxy/echo" ||
		r.Header.Get("X-Forwarded-For") == "" || r.Header.Get("X-Forwarded-Host") != nx.Addr {
		t.Fatalf("headers the app saw: %v", r.Header)
	}
	if len(conns) != 1 {
		t.Fatalf("5 sequential requests took %d upstream connections; the pool keeps one alive", len(conns))
	}
}

// groupCPU adds up the CPU time of a process group's processes (nginx's master and workers),
// and selfCPU this process's: both grow with work done.
func TestCPUTime(t *testing.T) {
	// A shell busy in a group of its own, with a child also busy in it.
	cmd := exec.Command("sh", "-c", `busy() { i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done; }; busy & busy; wait; exec sleep 60`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	cpu := groupCPU(cmd.Process.Pid)
	var got time.Duration
	for range 600 { // until both loops are done: the sleep is then the group's only process
		var err error
		if got, err = cpu(); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid)); strings.TrimSpace(string(b)) == "sleep" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got <= 0 {
		t.Fatalf("group CPU after two busy loops: %v", got)
	}
	if none, err := groupCPU(1 << 30)(); err != nil || none != 0 {
		t.Fatalf("a group with no process: %v %v", none, err)
	}
	before, err := selfCPU()
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for i := range 50_000_000 {
		x ^= i
	}
	after, _ := selfCPU()
	if after <= before || x == 42 {
		t.Fatalf("own CPU did not grow: %v then %v", before, after)
	}
}
