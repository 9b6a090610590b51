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
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/berthproject/berth/internal/proxy"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker"
	"github.com/berthproject/berth/internal/service"
	"github.com/berthproject/berth/internal/store"
)

// ServiceConfig sets the service benchmarks' sizes.
type ServiceConfig struct {
	Dir         string // the service folder (default examples/service-echo)
	ColdRounds  int    // P4: cold starts each side (default 5)
	Requests    int    // P5: HTTP requests each side (default 1000)
	WSMessages  int    // P5: WebSocket echoes each side (default 1000)
	PollEvery   time.Duration
	KeepService bool
}

// DefaultServiceConfig is the sizes.
func DefaultServiceConfig() ServiceConfig {
	return ServiceConfig{Dir: "examples/service-echo", ColdRounds: 5, Requests: 1000, WSMessages: 1000, PollEvery: 20 * time.Millisecond}
}

// ServiceResult holds P4 and P5.
type ServiceResult struct {
	ProxyColdP50, DirectColdP50 time.Duration
	ColdRatio                   float64
	ProxyP50, ProxyP99          time.Duration
	DirectP50, DirectP99        time.Duration
	WSProxyP50, WSDirectP50     time.Duration
}

// RunServices measures a cold start through the proxy against docker start + readiness done
// directly (P4), and the latency the proxy adds to HTTP keep-alive requests and WebSocket
// echoes against the container's own address (P5).
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
	m := service.New(scfg, st, eng, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := m.Start(ctx); err != nil {
		return res, err
	}
	defer m.Close()
	px := httptest.NewServer(proxy.New(proxy.Config{}, m))
	defer px.Close()

	tarBytes, err := tarDir(cfg.Dir, map[string][]byte{"container.json": []byte(`{"on_demand": true, "storage": 0, "cpu": 1, "memory": 256}`)})
	if err != nil {
		return res, fmt.Errorf("service folder %s: %w", cfg.Dir, err)
	}
	const name = "bench-echo"
	fmt.Fprintf(w, "P4/P5: building the service from %s\n", cfg.Dir)
	if _, err := m.Create(ctx, name, "", tarBytes); err != nil {
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
	firstByte := func(url string) (time.Duration, error) {
		t0 := time.Now()
		resp, err := client.Get(url)
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

	// ---- P4: cold start ----
	fmt.Fprintf(w, "P4: %d cold starts through the proxy, %d docker start + readiness done directly\n", cfg.ColdRounds, cfg.ColdRounds)
	var proxyCold, directCold []time.Duration
	for i := 0; i < cfg.ColdRounds; i++ {
		if err := m.Stop(ctx, name, false); err != nil {
			return res, err
		}
		d, err := firstByte(px.URL + "/proxy/" + name + "/healthz")
		if err != nil {
			return res, err
		}
		proxyCold = append(proxyCold, d)
		if err := m.Stop(ctx, name, false); err != nil {
			return res, err
		}
		d, err = directColdStart(ctx, eng, svc, scfg, labels, firstByte, cfg.PollEvery)
		if err != nil {
			return res, err
		}
		directCold = append(directCold, d)
	}
	res.ProxyColdP50, res.DirectColdP50 = pct(proxyCold, 50), pct(directCold, 50)
	res.ColdRatio = float64(res.ProxyColdP50) / float64(res.DirectColdP50)

	// ---- P5: proxy added latency ----
	addr, err := m.Ensure(ctx, name)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(w, "P5: %d keep-alive requests and %d WebSocket echoes each, through the proxy and direct\n", cfg.Requests, cfg.WSMessages)
	var viaProxy, direct []time.Duration
	for i := 0; i < cfg.Requests; i++ {
		for _, side := range []struct {
			url string
			out *[]time.Duration
		}{{px.URL + "/proxy/" + name + "/healthz", &viaProxy}, {"http://" + addr + "/healthz", &direct}} {
			d, err := firstByte(side.url)
			if err != nil {
				return res, err
			}
			if i >= 20 { // warm-up
				*side.out = append(*side.out, d)
			}
		}
	}
	res.ProxyP50, res.ProxyP99 = pct(viaProxy, 50), pct(viaProxy, 99)
	res.DirectP50, res.DirectP99 = pct(direct, 50), pct(direct, 99)

	wsP, err := wsEchoes(ctx, "ws"+strings.TrimPrefix(px.URL, "http")+"/proxy/"+name+"/ws", cfg.WSMessages)
	if err != nil {
		return res, err
	}
	wsD, err := wsEchoes(ctx, "ws://"+addr+"/ws", cfg.WSMessages)
	if err != nil {
		return res, err
	}
	res.WSProxyP50, res.WSDirectP50 = pct(wsP, 50), pct(wsD, 50)
	if !cfg.KeepService {
		m.Stop(ctx, name, false)
	}
	return res, nil
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

func wsEchoes(ctx context.Context, url string, n int) ([]time.Duration, error) {
	c, _, err := websocket.Dial(ctx, url, nil)
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
	fmt.Fprintf(w, "P5 proxy_added_p50_ms=%s proxy_added_p99_ms=%s proxy_p50_ms=%s direct_p50_ms=%s\n",
		ms(r.ProxyP50-r.DirectP50), ms(r.ProxyP99-r.DirectP99), ms(r.ProxyP50), ms(r.DirectP50))
	fmt.Fprintf(w, "P5 ws_added_p50_ms=%s ws_proxy_p50_ms=%s ws_direct_p50_ms=%s\n", ms(r.WSProxyP50-r.WSDirectP50), ms(r.WSProxyP50), ms(r.WSDirectP50))
}
