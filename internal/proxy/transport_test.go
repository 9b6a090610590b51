package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countedServer is an upstream that counts the connections it accepted and closed.
type countedServer struct {
	*httptest.Server
	opened, closed atomic.Int32
}

func newCountedServer(t *testing.T, h http.Handler, configure ...func(*http.Server)) *countedServer {
	t.Helper()
	s := &countedServer{}
	s.Server = httptest.NewUnstartedServer(h)
	for _, f := range configure {
		f(s.Config)
	}
	s.Config.ConnState = func(c net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			s.closed.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func newTestTransport(t *testing.T) *transport {
	tr := newTransport(&http.Transport{})
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// do sends one request through tr and reads its whole body.
func do(t *testing.T, tr http.RoundTripper, method, url string, body io.Reader, size int64) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if size != 0 {
		req.ContentLength = size
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, url, err)
	}
	return resp, b
}

func TestTransportReusesConnections(t *testing.T) {
	up := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello "+r.URL.Path)
	}))
	tr := newTestTransport(t)
	for i := range 50 {
		_, b := do(t, tr, "GET", up.URL+"/"+strconv.Itoa(i), nil, 0)
		if string(b) != "hello /"+strconv.Itoa(i) {
			t.Fatalf("request %d: %q", i, b)
		}
	}
	if n := up.opened.Load(); n != 1 {
		t.Errorf("50 sequential requests opened %d connections, want 1", n)
	}
}

// Bodies of known and unknown length, large, both ways; also an upstream that answers as it
// reads (full duplex), which would deadlock a transport that writes the whole request first.
func TestTransportBodies(t *testing.T) {
	up := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo-fixed":
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			w.Header().Set("X-Request-Length", strconv.FormatInt(r.ContentLength, 10))
			w.Write(b)
		case "/echo-chunked":
			http.NewResponseController(w).EnableFullDuplex()
			w.Header().Set("X-Request-Length", strconv.FormatInt(r.ContentLength, 10))
			buf := make([]byte, 8<<10)
			for {
				n, err := r.Body.Read(buf)
				if n > 0 {
					w.Write(buf[:n])
					w.(http.Flusher).Flush()
				}
				if err != nil {
					return
				}
			}
		}
	}))
	tr := newTestTransport(t)
	payload := bytes.Repeat([]byte("0123456789abcdef"), 256<<10) // 4 MiB
	for _, path := range []string{"/echo-fixed", "/echo-chunked"} {
		for _, chunked := range []bool{false, true} {
			name := fmt.Sprintf("%s chunked request=%v", path, chunked)
			var body io.Reader = bytes.NewReader(payload)
			size := int64(len(payload))
			if chunked {
				body, size = io.MultiReader(bytes.NewReader(payload)), -1 // hides the length
			}
			resp, b := do(t, tr, "POST", up.URL+path, body, size)
			if !bytes.Equal(b, payload) {
				t.Errorf("%s: %d bytes back, want %d intact", name, len(b), len(payload))
			}
			if got, want := resp.Header.Get("X-Request-Length"), strconv.FormatInt(size, 10); got != want {
				t.Errorf("%s: the upstream saw length %s, want %s", name, got, want)
			}
			if chunked := len(resp.TransferEncoding) > 0; chunked != (path == "/echo-chunked") {
				t.Errorf("%s: response transfer encoding %v", name, resp.TransferEncoding)
			}
		}
	}
	if n := up.opened.Load(); n != 1 {
		t.Errorf("4 requests with bodies opened %d connections, want 1", n)
	}
}

func TestTransportResponsesWithoutBody(t *testing.T) {
	up := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		default:
			w.Header().Set("Content-Length", "11")
			io.WriteString(w, "hello world")
		}
	}))
	tr := newTestTransport(t)
	for _, c := range []struct {
		method, path string
		status       int
	}{{"HEAD", "/", 200}, {"GET", "/204", 204}, {"GET", "/304", 304}, {"HEAD", "/", 200}, {"GET", "/", 200}} {
		resp, b := do(t, tr, c.method, up.URL+c.path, nil, 0)
		want := ""
		if c.method == "GET" && c.status == 200 {
			want = "hello world"
		}
		if resp.StatusCode != c.status || string(b) != want {
			t.Errorf("%s %s: %d %q, want %d %q", c.method, c.path, resp.StatusCode, b, c.status, want)
		}
		if c.method == "HEAD" && resp.ContentLength != 11 {
			t.Errorf("HEAD: Content-Length %d, want 11", resp.ContentLength)
		}
	}
	if n := up.opened.Load(); n != 1 {
		t.Errorf("responses without a body opened %d connections, want 1 (the connection is reusable)", n)
	}
}

func TestTransportUpstreamConnectionClose(t *testing.T) {
	up := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("close") != "" {
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, "ok")
	}))
	tr := newTestTransport(t)
	for _, q := range []string{"?close=1", "?close=1", "", ""} {
		if _, b := do(t, tr, "GET", up.URL+"/"+q, nil, 0); string(b) != "ok" {
			t.Fatalf("%s: %q", q, b)
		}
	}
	if n := up.opened.Load(); n != 3 {
		t.Errorf("opened %d connections, want 3 (two closed by the upstream, then one kept)", n)
	}
	waitFor(t, "the upstream's closed connections", func() bool { return up.closed.Load() == 2 })
	tr.mu.Lock()
	idle := len(tr.idle[strings.TrimPrefix(up.URL, "http://")])
	tr.mu.Unlock()
	if idle != 1 {
		t.Errorf("%d idle connections, want 1", idle)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rawUpstream is an HTTP/1.1 server written by hand: on each connection it answers the first
// request with keep-alive, then reads the second and hangs up without an answer, as a server
// closing an idle connection at the moment a request arrives does.
type rawUpstream struct {
	ln       net.Listener
	conns    atomic.Int32
	mu       sync.Mutex
	requests []string // method and path, in order
}

func newRawUpstream(t *testing.T) *rawUpstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.conns.Add(1)
			go u.serve(c)
		}
	}()
	return u
}

func (u *rawUpstream) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for i := 0; ; i++ {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		u.mu.Lock()
		u.requests = append(u.requests, req.Method+" "+req.URL.Path)
		u.mu.Unlock()
		if i == 1 {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	}
}

func (u *rawUpstream) seen() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.requests...)
}

func TestTransportRetriesStaleConnectionForGETOnly(t *testing.T) {
	t.Run("GET", func(t *testing.T) {
		u := newRawUpstream(t)
		tr := newTestTransport(t)
		url := "http://" + u.ln.Addr().String()
		do(t, tr, "GET", url+"/a", nil, 0)
		if _, b := do(t, tr, "GET", url+"/b", nil, 0); string(b) != "ok" {
			t.Fatalf("retried GET: %q", b)
		}
		if got, want := strings.Join(u.seen(), ","), "GET /a,GET /b,GET /b"; got != want {
			t.Errorf("upstream saw %s, want %s", got, want)
		}
		if n := u.conns.Load(); n != 2 {
			t.Errorf("%d connections, want 2", n)
		}
	})
	t.Run("POST", func(t *testing.T) {
		u := newRawUpstream(t)
		tr := newTestTransport(t)
		url := "http://" + u.ln.Addr().String()
		do(t, tr, "GET", url+"/a", nil, 0)
		req, _ := http.NewRequest("POST", url+"/b", strings.NewReader("data"))
		req.GetBody = nil // as a server's request, forwarded
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("a POST the upstream never answered succeeded: %d", resp.StatusCode)
		}
		if got, want := strings.Join(u.seen(), ","), "GET /a,POST /b"; got != want {
			t.Errorf("upstream saw %s, want %s (a POST is not sent twice)", got, want)
		}
		// With GetBody it can be sent again, like a GET.
		do(t, tr, "GET", url+"/c", nil, 0)
		req, _ = http.NewRequest("POST", url+"/d", strings.NewReader("data"))
		req.Header.Set("Idempotency-Key", "k1")
		resp, err = tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("POST with GetBody and Idempotency-Key: %v", err)
		}
		resp.Body.Close()
	})
}

// A connection the upstream closed while it was idle is not used for a request that could
// not be sent again.
func TestTransportSkipsClosedIdleConnectionForPOST(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("idle connections are probed on linux only")
	}
	up := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}), func(s *http.Server) { s.IdleTimeout = 50 * time.Millisecond })
	tr := newTestTransport(t)
	do(t, tr, "GET", up.URL, nil, 0)
	waitFor(t, "the upstream to close the idle connection", func() bool { return up.closed.Load() == 1 })
	time.Sleep(20 * time.Millisecond)
	req, _ := http.NewRequest("POST", up.URL, strings.NewReader("data"))
	req.GetBody = nil
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("POST after the upstream closed the idle connection: %v", err)
	}
	resp.Body.Close()
	if n := up.opened.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestTransportCancellation(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	upstreamSawEnd := make(chan struct{}, 1)
	up := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow-head" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			upstreamSawEnd <- struct{}{}
		}
	}))
	tr := newTestTransport(t)

	t.Run("mid-body", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", up.URL+"/stream", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		if l, _ := br.ReadString('\n'); l != "first\n" {
			t.Fatalf("first line %q", l)
		}
		go func() { time.Sleep(50 * time.Millisecond); cancel() }()
		start := time.Now()
		_, err = br.ReadString('\n')
		if !errors.Is(err, context.Canceled) {
			t.Errorf("read after cancel: %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("the read took %v to end", d)
		}
		select {
		case <-upstreamSawEnd:
		case <-time.After(5 * time.Second):
			t.Error("the upstream's connection stayed open after cancellation")
		}
	})
	t.Run("before the head", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", up.URL+"/slow-head", nil)
		start := time.Now()
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
			t.Fatal("no error")
		}
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
			t.Errorf("%v after %v, want context.DeadlineExceeded soon", err, time.Since(start))
		}
	})
	tr.mu.Lock()
	idle := len(tr.idle)
	tr.mu.Unlock()
	if idle != 0 {
		t.Errorf("a cancelled exchange's connection went back to the pool")
	}
}

// A response body closed before its end closes the connection; the next request gets a new one.
func TestTransportEarlyCloseDoesNotReuse(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	up := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, big)
	}))
	tr := newTestTransport(t)
	req, _ := http.NewRequest("GET", up.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Read(make([]byte, 10))
	resp.Body.Close()
	if _, err := resp.Body.Read(make([]byte, 10)); err == nil {
		t.Error("read after close succeeded")
	}
	if _, b := do(t, tr, "GET", up.URL, nil, 0); len(b) != len(big) {
		t.Fatalf("second response %d bytes", len(b))
	}
	if n := up.opened.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestTransportIdleTimeout(t *testing.T) {
	up := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	tr := newTestTransport(t)
	tr.idleTimeout = 50 * time.Millisecond
	do(t, tr, "GET", up.URL, nil, 0)
	waitFor(t, "the idle connection to be closed", func() bool { return up.closed.Load() == 1 })
	tr.mu.Lock()
	n := len(tr.idle)
	tr.mu.Unlock()
	if n != 0 {
		t.Errorf("pool still holds %d hosts", n)
	}
}

func TestTransportEarlyHints(t *testing.T) {
	up := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "page")
	}))
	// Through the proxy: the client sees the 103 and then the page.
	front := httptest.NewServer(New(Config{}, &fakeServices{addr: strings.TrimPrefix(up.URL, "http://")}))
	defer front.Close()
	var hints atomic.Int32
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			if code == http.StatusEarlyHints && h.Get("Link") != "" {
				hints.Add(1)
			}
			return nil
		}})
	req, _ := http.NewRequestWithContext(ctx, "GET", front.URL+"/proxy/svc/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "page" || hints.Load() != 1 {
		t.Fatalf("%d %q after %d early hints, want 200 page after 1", resp.StatusCode, b, hints.Load())
	}
}

// Many clients at once through the proxy, with and without bodies; run with -race.
func TestTransportConcurrent(t *testing.T) {
	up := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Query().Get("chunked") != "" {
			w.Write(b[:len(b)/2])
			w.(http.Flusher).Flush()
			w.Write(b[len(b)/2:])
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)+len(r.URL.Path)))
		w.Write(b)
		io.WriteString(w, r.URL.Path)
	}))
	front := httptest.NewServer(New(Config{}, &fakeServices{addr: strings.TrimPrefix(up.URL, "http://")}))
	defer front.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				path := fmt.Sprintf("/g%d/r%d", g, i)
				var resp *http.Response
				var err error
				want := path
				switch i % 3 {
				case 0:
					resp, err = client.Get(front.URL + "/proxy/svc" + path)
				case 1:
					body := strings.Repeat(path, 100)
					want = body + path
					resp, err = client.Post(front.URL+"/proxy/svc"+path, "text/plain", strings.NewReader(body))
				case 2:
					body := strings.Repeat(path, 50)
					want = body
					resp, err = client.Post(front.URL+"/proxy/svc"+path+"?chunked=1", "text/plain", io.MultiReader(strings.NewReader(body)))
				}
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || string(b) != want {
					errs <- fmt.Errorf("%s: %d %d bytes, %v", path, resp.StatusCode, len(b), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("2000 requests over %d upstream connections", up.opened.Load())
}

// The proxy's transport choices: plain requests take the fast path, upgrades and other
// unusual requests go to net/http.
func TestTransportHandles(t *testing.T) {
	tr := newTransport(&http.Transport{})
	for _, c := range []struct {
		name   string
		mod    func(*http.Request)
		handle bool
	}{
		{"plain", func(*http.Request) {}, true},
		{"https", func(r *http.Request) { r.URL.Scheme = "https" }, false},
		{"websocket", func(r *http.Request) { r.Header.Set("Connection", "Upgrade"); r.Header.Set("Upgrade", "websocket") }, false},
		{"connection keep-alive, upgrade", func(r *http.Request) { r.Header.Set("Connection", "keep-alive, Upgrade") }, false},
		{"expect", func(r *http.Request) { r.Header.Set("Expect", "100-continue") }, false},
		{"trailer", func(r *http.Request) { r.Trailer = http.Header{"X-Sum": nil} }, false},
		{"connect", func(r *http.Request) { r.Method = http.MethodConnect }, false},
	} {
		req, _ := http.NewRequest("GET", "http://127.0.0.1:1/x", nil)
		c.mod(req)
		if got := tr.handles(req); got != c.handle {
			t.Errorf("%s: handles %v, want %v", c.name, got, c.handle)
		}
	}
}

// BenchmarkProxyTransport compares the proxy with net/http's transport and with its own,
// side by side against the same upstream, at 1 client and at 32.
func BenchmarkProxyTransport(b *testing.B) {
	body := strings.Repeat("x", 512)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		io.WriteString(w, body)
	}))
	defer up.Close()
	results := map[string]float64{}
	for _, conc := range []int{1, 32} {
		for _, kind := range []string{"nethttp", "fast"} {
			name := fmt.Sprintf("c%d/%s", conc, kind)
			b.Run(name, func(b *testing.B) {
				p := New(Config{}, &fakeServices{addr: strings.TrimPrefix(up.URL, "http://")})
				if kind == "nethttp" {
					p.rp.Transport = p.rp.Transport.(*transport).fallback
				}
				front := httptest.NewServer(p)
				defer front.Close()
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
				defer client.CloseIdleConnections()
				get := func() {
					resp, err := client.Get(front.URL + "/proxy/svc/")
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				b.ResetTimer()
				start := time.Now()
				if conc == 1 {
					for range b.N {
						get()
					}
				} else {
					b.SetParallelism((conc + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							get()
						}
					})
				}
				rps := float64(b.N) / time.Since(start).Seconds()
				b.ReportMetric(rps, "req/s")
				results[name] = rps
			})
		}
		if n, f := results[fmt.Sprintf("c%d/nethttp", conc)], results[fmt.Sprintf("c%d/fast", conc)]; n > 0 && f > 0 {
			b.Logf("c%d: fast/nethttp = %.2f", conc, f/n)
		}
	}
}
