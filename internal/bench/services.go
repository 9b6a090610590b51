package bench

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/berthproject/berth/internal/api"
	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/proxy"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker"
	"github.com/berthproject/berth/internal/service"
	"github.com/berthproject/berth/internal/store"
)

// ServiceConfig sets the service benchmarks' sizes.
type ServiceConfig struct {
	Dir        string // the service folder (default examples/service-echo)
	ColdRounds int    // P4: cold starts each side (default 5)
	Requests   int    // P5: HTTP requests each side (default 1000)
	WSMessages int    // P5: WebSocket echoes each side (default 1000)
	// WrkDuration is the length of each wrk run (berth, nginx, direct; at 1 and 32
	// connections), WrkRounds how many times each is repeated, alternating the order; the
	// best run of each side counts. Defaults 3 s and 2.
	WrkDuration time.Duration
	WrkRounds   int
	// WrkOff skips the wrk comparison (no wrk or nginx needed).
	WrkOff bool
	// CPUProfile, if set, is where a CPU profile of the whole process during the wrk runs is
	// written (berth's proxy is the only part of it busy then).
	CPUProfile  string
	PollEvery   time.Duration
	KeepService bool
}

// DefaultServiceConfig is the issue's sizes.
func DefaultServiceConfig() ServiceConfig {
	return ServiceConfig{Dir: "examples/service-echo", ColdRounds: 5, Requests: 1000, WSMessages: 1000,
		WrkDuration: 3 * time.Second, WrkRounds: 2, PollEvery: 20 * time.Millisecond}
}

// ServiceResult holds P4 and P5.
type ServiceResult struct {
	ProxyColdP50, DirectColdP50 time.Duration
	ColdRatio                   float64
	ProxyP50, ProxyP99          time.Duration
	DirectP50, DirectP99        time.Duration
	WSProxyP50, WSDirectP50     time.Duration
	// CookieP50 and CookieP99: the same requests with a session cookie instead of the bearer
	// token; CookieErr says why they were not measured.
	CookieP50, CookieP99 time.Duration
	CookieErr            error
	// Wrk holds the load generator's runs, by side ("berth", "nginx", "direct") and
	// connections (1, 32); nil when skipped.
	Wrk map[string]map[int]WrkResult
}

// wrkConns are the connection counts of the wrk comparison.
var wrkConns = []int{1, 32}

// RPSRatio is berth's requests per second over nginx's at conns connections.
func (r ServiceResult) RPSRatio(conns int) float64 {
	n := r.Wrk["nginx"][conns].RPS
	if n == 0 {
		return 0
	}
	return r.Wrk["berth"][conns].RPS / n
}

// RunServices measures a cold start through the proxy of a service stopped for idleness against
// docker start + readiness done directly (P4); the latency berth adds to HTTP keep-alive requests and WebSocket echoes
// against the container's own address, each request authenticated as real clients do, with a
// bearer token and with a session cookie (P5); and the requests per second wrk gets through
// berth and through nginx in front of the same container, in the same run (P5).
//
// berth's side is the server's own handler stack (API, token check, scoped-token check, the
// proxy) on a loopback listener, as `berth server` wires it.
func RunServices(ctx context.Context, eng *docker.Engine, cfg ServiceConfig, dataDir string, w io.Writer) (ServiceResult, error) {
	var res ServiceResult
	st, err := store.OpenSQLite(ctx, filepath.Join(dataDir, "services.db"))
	if err != nil {
		return res, err
	}
	defer st.Close()
	labels := map[string]string{runtime.LabelManaged: "true", "berth.bench": "1"}
	defer eng.Sweep(context.WithoutCancel(ctx), labels)
	scfg := service.DefaultConfig(filepath.Join(dataDir, "services"), "bench")
	scfg.ExtraLabels = labels
	scfg.PollInterval = cfg.PollEvery
	// Like the server's logger at its default level: nothing per request is written.
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	m := service.New(scfg, st, eng, log)
	if err := m.Start(ctx); err != nil {
		return res, err
	}
	defer m.Close()
	a := auth.New(st)
	token, _, err := a.Issue(ctx, "bench", auth.RoleUser, "")
	if err != nil {
		return res, err
	}
	bearer := http.Header{"Authorization": {"Bearer " + token}}
	prx := proxy.New(proxy.Config{Log: log, Authorize: proxy.Authorize}, m)
	px := httptest.NewServer(api.New(api.Config{}, api.Deps{Services: m, Proxy: prx, Auth: a, Log: log}))
	defer px.Close()

	tarBytes, err := tarDir(cfg.Dir, map[string][]byte{"container.json": []byte(`{"on_demand": true, "storage": 0, "cpu": 1, "memory": 256}`)})
	if err != nil {
		return res, fmt.Errorf("service folder %s: %w", cfg.Dir, err)
	}
	const name = "bench-echo"
	fmt.Fprintf(w, "P4/P5: building the service from %s\n", cfg.Dir)
	if _, err := m.Create(ctx, "", name, "", tarBytes); err != nil {
		return res, err
	}
	var svc service.Service
	for deadline := time.Now().Add(5 * time.Minute); ; {
		if svc, err = m.Get(ctx, name); err != nil {
			return res, err
		}
		if svc.ImageState == service.ImageReady {
			break
		}
		if svc.ImageState == service.ImageError || time.Now().After(deadline) {
			return res, fmt.Errorf("service image: %s %s (needs `berth runtime bootstrap python`)", svc.ImageState, svc.ImageReason)
		}
		time.Sleep(100 * time.Millisecond)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	firstByte := func(url string, h http.Header) (time.Duration, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, err
		}
		for k, v := range h {
			req.Header[k] = v
		}
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		d := time.Since(t0)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return 0, fmt.Errorf("%s: status %d", url, resp.StatusCode)
		}
		return d, nil
	}
	proxyURL := px.URL + "/proxy/" + name + "/healthz"

	// ---- P4: cold start ----
	fmt.Fprintf(w, "P4: %d cold starts through the proxy, %d docker start + readiness done directly\n", cfg.ColdRounds, cfg.ColdRounds)
	var proxyCold, directCold []time.Duration
	for i := 0; i < cfg.ColdRounds; i++ {
		// Stopped as an on-demand service is, for idleness: its network stays for the next
		// start (a stop by a user removes it too, and the next start makes it again).
		if err := m.Stop(ctx, name, true); err != nil {
			return res, err
		}
		d, err := firstByte(proxyURL, bearer)
		if err != nil {
			return res, err
		}
		proxyCold = append(proxyCold, d)
		if err := m.Stop(ctx, name, false); err != nil {
			return res, err
		}
		d, err = directColdStart(ctx, eng, svc, scfg, labels, func(u string) (time.Duration, error) { return firstByte(u, nil) }, cfg.PollEvery)
		if err != nil {
			return res, err
		}
		directCold = append(directCold, d)
	}
	res.ProxyColdP50, res.DirectColdP50 = pct(proxyCold, 50), pct(directCold, 50)
	res.ColdRatio = float64(res.ProxyColdP50) / float64(res.DirectColdP50)

	// ---- P5: what berth adds to a client's request ----
	addr, err := m.Ensure(ctx, name)
	if err != nil {
		return res, err
	}
	cookie, cookieErr := signIn(ctx, px.URL, token, "/proxy/"+name+"/")
	res.CookieErr = cookieErr
	fmt.Fprintf(w, "P5: %d keep-alive requests and %d WebSocket echoes each, through the proxy (bearer token%s) and direct\n",
		cfg.Requests, cfg.WSMessages, map[bool]string{true: ", session cookie", false: ""}[cookieErr == nil])
	sides := []struct {
		url string
		h   http.Header
		out *[]time.Duration
	}{{proxyURL, bearer, new([]time.Duration)}, {"http://" + addr + "/healthz", nil, new([]time.Duration)}}
	if cookieErr == nil {
		sides = append(sides, struct {
			url string
			h   http.Header
			out *[]time.Duration
		}{proxyURL, http.Header{"Cookie": {cookie.String()}}, new([]time.Duration)})
	}
	for i := 0; i < cfg.Requests+20; i++ {
		for _, side := range sides {
			d, err := firstByte(side.url, side.h)
			if err != nil {
				return res, err
			}
			if i >= 20 { // warm-up
				*side.out = append(*side.out, d)
			}
		}
	}
	res.ProxyP50, res.ProxyP99 = pct(*sides[0].out, 50), pct(*sides[0].out, 99)
	res.DirectP50, res.DirectP99 = pct(*sides[1].out, 50), pct(*sides[1].out, 99)
	if cookieErr == nil {
		res.CookieP50, res.CookieP99 = pct(*sides[2].out, 50), pct(*sides[2].out, 99)
	}

	wsP, err := wsEchoes(ctx, "ws"+strings.TrimPrefix(px.URL, "http")+"/proxy/"+name+"/ws", bearer, cfg.WSMessages)
	if err != nil {
		return res, err
	}
	wsD, err := wsEchoes(ctx, "ws://"+addr+"/ws", nil, cfg.WSMessages)
	if err != nil {
		return res, err
	}
	res.WSProxyP50, res.WSDirectP50 = pct(wsP, 50), pct(wsD, 50)

	if !cfg.WrkOff {
		if res.Wrk, err = compareWithNginx(ctx, cfg, w, proxyURL, "http://"+addr+"/healthz", addr, "/proxy/"+name+"/", "Authorization: Bearer "+token); err != nil {
			return res, err
		}
	}
	if !cfg.KeepService {
		m.Stop(ctx, name, false)
	}
	return res, nil
}

// signIn gets a session cookie the way a browser does: POST /signin with the token as a form
// field, answered by a Set-Cookie of berth_session.
func signIn(ctx context.Context, base, token, next string) (*http.Cookie, error) {
	form := url.Values{"token": {token}, "next": {next}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/signin", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base) // a browser's same-origin form post
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST /signin: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie && ck.Value != "" {
			return &http.Cookie{Name: ck.Name, Value: ck.Value}, nil
		}
	}
	return nil, fmt.Errorf("POST /signin answered %d without a %s cookie: this build has no browser sign-in, so the session-cookie requests were not measured", resp.StatusCode, sessionCookie)
}

// sessionCookie is the name of berth's browser session cookie.
const sessionCookie = "berth_session"

// compareWithNginx runs wrk at 1 and 32 connections against berth's proxy (with the bearer
// header), against nginx started here in front of the same container, and against the
// container directly, alternating the order each round; each side keeps its best run.
func compareWithNginx(ctx context.Context, cfg ServiceConfig, w io.Writer, berthURL, directURL, upstream, prefix, authHeader string) (map[string]map[int]WrkResult, error) {
	nx, err := startNginx(ctx, upstream, prefix, goruntime.GOMAXPROCS(0))
	if err != nil {
		return nil, err
	}
	defer nx.Stop()
	type side struct {
		name, url string
		headers   []string
		cpu       cpuTime
	}
	sides := []side{
		{"berth", berthURL, []string{authHeader}, selfCPU},
		{"nginx", "http://" + nx.Addr + prefix + "healthz", []string{authHeader}, groupCPU(nx.cmd.Process.Pid)},
		{"direct", directURL, []string{authHeader}, nil},
	}
	fmt.Fprintf(w, "P5: wrk for %s at %v connections against berth, nginx and the container directly, %d rounds\n", cfg.WrkDuration, wrkConns, cfg.WrkRounds)
	// Warm both proxies' upstream pools and the app.
	for _, s := range sides[:2] {
		if _, err := wrkRun(ctx, s.url, 32, time.Second, s.headers); err != nil {
			return nil, err
		}
	}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	best := map[string]map[int]WrkResult{}
	for round := 0; round < max(1, cfg.WrkRounds); round++ {
		for _, conns := range wrkConns {
			order := append([]side(nil), sides...)
			if round%2 == 1 {
				slices.Reverse(order)
			}
			for _, s := range order {
				r, err := wrkRunCPU(ctx, s.url, conns, cfg.WrkDuration, s.headers, s.cpu)
				if err != nil {
					return nil, err
				}
				if r.Requests == 0 || r.Errors > 0 {
					return nil, fmt.Errorf("wrk against %s (%s, %d connections): %d requests, %d errors or non-2xx answers", s.name, s.url, conns, r.Requests, r.Errors)
				}
				if best[s.name] == nil {
					best[s.name] = map[int]WrkResult{}
				}
				prev, seen := best[s.name][conns]
				cpu := r.CPUPerRequest
				if seen && prev.CPUPerRequest > 0 && prev.CPUPerRequest < cpu {
					// The least CPU per request of the rounds: the run least disturbed by others.
					cpu = prev.CPUPerRequest
				}
				if r.RPS > prev.RPS {
					prev = r
				}
				prev.CPUPerRequest = cpu
				best[s.name][conns] = prev
			}
		}
	}
	return best, nil
}

// directColdStart starts the service's image the way the manager does, waits for the port and
// the health path with the same polling, and times the first byte of a direct request.
func directColdStart(ctx context.Context, eng *docker.Engine, svc service.Service, cfg service.Config, labels map[string]string,
	firstByte func(string) (time.Duration, error), poll time.Duration) (time.Duration, error) {
	t0 := time.Now()
	l := map[string]string{runtime.LabelKind: "bench-direct"}
	for k, v := range labels {
		l[k] = v
	}
	id, err := eng.Start(ctx, runtime.TaskSpec{Image: svc.Image, Labels: l, Network: "bridge", ExposedPorts: []int{svc.Port},
		Limits:   runtime.Limits{NanoCPUs: 1e9, MemoryBytes: 256 << 20, ShmSizeBytes: 64 << 20},
		Tmpfs:    []runtime.Tmpfs{{Target: "/tmp", SizeBytes: 256 << 20}},
		Security: runtime.Security{DropAllCaps: true, NoNewPrivileges: true}})
	if err != nil {
		return 0, err
	}
	defer eng.Remove(context.WithoutCancel(ctx), id)
	addr, err := eng.Address(ctx, id, svc.Port)
	if err != nil {
		return 0, err
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(poll) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			if resp, err := http.Get("http://" + addr + svc.HealthPath); err == nil {
				resp.Body.Close()
				if resp.StatusCode < 500 {
					break
				}
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("direct start: not ready")
		}
	}
	if _, err := firstByte("http://" + addr + "/healthz"); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

func wsEchoes(ctx context.Context, url string, h http.Header, n int) ([]time.Duration, error) {
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, fmt.Errorf("websocket %s: %w", url, err)
	}
	defer c.Close(websocket.StatusNormalClosure, "")
	msg := []byte("berth-bench-echo")
	var out []time.Duration
	for i := 0; i < n+20; i++ {
		t0 := time.Now()
		if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
			return nil, err
		}
		if _, b, err := c.Read(ctx); err != nil || !bytes.Equal(b, msg) {
			return nil, fmt.Errorf("websocket echo: %q %v", b, err)
		}
		if i >= 20 {
			out = append(out, time.Since(t0))
		}
	}
	return out, nil
}

// tarDir packs a folder, with some files replaced.
func tarDir(dir string, replace map[string][]byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	add := func(name string, data []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
		seen[name] = true
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, ok := replace[e.Name()]
		if !ok {
			if data, err = os.ReadFile(filepath.Join(dir, e.Name())); err != nil {
				return nil, err
			}
		}
		add(e.Name(), data)
	}
	for n, d := range replace {
		if !seen[n] {
			add(n, d)
		}
	}
	return buf.Bytes(), tw.Close()
}

// PrintServices writes P4 and P5.
func PrintServices(w io.Writer, r ServiceResult) {
	fmt.Fprintf(w, "P4 cold_start_ratio=%.3f proxy_cold_p50_ms=%s direct_cold_p50_ms=%s\n", r.ColdRatio, ms(r.ProxyColdP50), ms(r.DirectColdP50))
	fmt.Fprintf(w, "P5 proxy_added_p50_ms=%s proxy_added_p99_ms=%s proxy_p50_ms=%s direct_p50_ms=%s (bearer token)\n",
		ms(r.ProxyP50-r.DirectP50), ms(r.ProxyP99-r.DirectP99), ms(r.ProxyP50), ms(r.DirectP50))
	if r.CookieErr != nil {
		fmt.Fprintf(w, "P5 cookie_added_p50_ms=none: %v\n", r.CookieErr)
	} else {
		fmt.Fprintf(w, "P5 cookie_added_p50_ms=%s cookie_added_p99_ms=%s cookie_p50_ms=%s (session cookie)\n",
			ms(r.CookieP50-r.DirectP50), ms(r.CookieP99-r.DirectP99), ms(r.CookieP50))
	}
	fmt.Fprintf(w, "P5 ws_added_p50_ms=%s ws_proxy_p50_ms=%s ws_direct_p50_ms=%s\n", ms(r.WSProxyP50-r.WSDirectP50), ms(r.WSProxyP50), ms(r.WSDirectP50))
	if r.Wrk == nil {
		return
	}
	b, n, d := r.Wrk["berth"], r.Wrk["nginx"], r.Wrk["direct"]
	fmt.Fprintf(w, "P5 proxy_rps_vs_nginx_c1=%.3f proxy_rps_vs_nginx_c32=%.3f berth_rps_c1=%.0f nginx_rps_c1=%.0f berth_rps_c32=%.0f nginx_rps_c32=%.0f direct_rps_c1=%.0f direct_rps_c32=%.0f\n",
		r.RPSRatio(1), r.RPSRatio(32), b[1].RPS, n[1].RPS, b[32].RPS, n[32].RPS, d[1].RPS, d[32].RPS)
	us := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Microsecond)) }
	fmt.Fprintf(w, "P5 cpu_us_per_request_berth_c1=%s cpu_us_per_request_nginx_c1=%s cpu_us_per_request_berth_c32=%s cpu_us_per_request_nginx_c32=%s\n",
		us(b[1].CPUPerRequest), us(n[1].CPUPerRequest), us(b[32].CPUPerRequest), us(n[32].CPUPerRequest))
	fmt.Fprintf(w, "P5 wrk_c1_added_p50_ms_berth=%s wrk_c1_added_p50_ms_nginx=%s wrk_c1_p50_ms_direct=%s\n",
		ms(b[1].P50Latency-d[1].P50Latency), ms(n[1].P50Latency-d[1].P50Latency), ms(d[1].P50Latency))
}
