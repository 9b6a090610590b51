package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

type recordingObserver struct {
	mu   sync.Mutex
	reqs []string // "service code"
	ws   map[string]int
}

func (o *recordingObserver) ProxyRequest(service string, code int, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reqs = append(o.reqs, service+" "+http.StatusText(code))
}

func (o *recordingObserver) ProxyWebSocket(service string, delta int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ws[service] += delta
}

func (o *recordingObserver) snapshot() ([]string, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.reqs...), o.ws["svc"]
}

// TestProxyObserver: the proxy tells its observer each request's service and answer, and
// counts a WebSocket open while it lasts.
func TestProxyObserver(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ws":
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			io.Copy(conn, brw) // echo until the client closes
		case "/missing":
			http.NotFound(w, r)
		default:
			io.WriteString(w, "ok")
		}
	}))
	defer backend.Close()
	obs := &recordingObserver{ws: map[string]int{}}
	fs := &fakeServices{addr: strings.TrimPrefix(backend.URL, "http://")}
	front := httptest.NewServer(New(Config{Observer: obs}, fs))
	defer front.Close()

	for _, p := range []string{"/proxy/svc/a", "/proxy/svc/missing", "/proxy/nope/a"} {
		resp, err := http.Get(front.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	reqs, _ := obs.snapshot()
	if strings.Join(reqs, ",") != "svc OK,svc Not Found" {
		t.Fatalf("observed %q, want the two requests to svc (an unknown service is not a label)", reqs)
	}

	conn, err := net.Dial("tcp", strings.TrimPrefix(front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "GET /proxy/svc/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	io.WriteString(conn, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q %v", buf, err)
	}
	if reqs, open := obs.snapshot(); open != 1 || reqs[len(reqs)-1] != "svc Switching Protocols" {
		t.Fatalf("while open: %d WebSockets, requests %q", open, reqs)
	}
	conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		reqs, open := obs.snapshot()
		if open == 0 {
			if len(reqs) != 3 {
				t.Fatalf("requests %q: the upgrade is one request", reqs)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d WebSockets still counted after the client closed", open)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
