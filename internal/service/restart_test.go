package service_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/proxy"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
	"github.com/berthproject/berth/internal/service"
)

// privateFixture is a service manager and its proxy on an engine of the test's own, which the
// test may stop and restart. Services there are busybox httpd.
func privateFixture(t *testing.T, p *enginetest.Private) (*fixture, string) {
	t.Helper()
	eng := p.Engine(t)
	img := p.Busybox(t, eng)
	f := fixtureOn(t, eng, nil)
	cfg, labels := f.cfg, f.cfg.ExtraLabels
	f.m = service.New(f.cfg, f.st, f.eng, nil)
	if err := f.m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The private engine's own address pool would overlap the machine's engine's networks:
	// the service "web"'s network comes from the private range, made after Start (which
	// removes networks no service owns yet), and berth finds it made.
	netLabels := map[string]string{runtime.LabelKind: runtime.KindService, runtime.LabelService: "web", runtime.LabelInstance: cfg.Instance}
	for k, v := range labels {
		netLabels[k] = v
	}
	p.CreateNetwork(t, cfg.ServiceNetwork("web"), netLabels)
	t.Cleanup(f.m.Close)
	f.proxy = httptest.NewServer(proxy.New(proxy.Config{RequestTimeout: 10 * time.Second}, f.m))
	t.Cleanup(f.proxy.Close)
	return f, img
}

// answersWithin asks the service through the proxy until it answers "ok", and fails the test
// after d.
func (f *fixture) answersWithin(t *testing.T, path string, d time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 15 * time.Second}
	deadline := time.Now().Add(d)
	last := ""
	for {
		resp, err := client.Get(f.proxy.URL + path)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.TrimSpace(string(b)) == "ok" {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service does not answer through the proxy after %s: %s", d, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A running service whose engine restarts (stopped in order, or killed) answers again through
// the proxy: the dead container is noticed and the next request starts a new one.
func TestServiceAnswersAgainAfterTheEngineRestarts(t *testing.T) {
	p := enginetest.StartPrivate(t)
	f, img := privateFixture(t, p)
	ctx := context.Background()
	if _, err := f.m.Create(ctx, "", "web", "", httpdContext(t, img, "ok", `{"on_demand": true, "storage": 0}`)); err != nil {
		t.Fatal(err)
	}
	f.waitImage(t, "web", service.ImageReady)
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
	}{{"stopped", syscall.SIGTERM}, {"killed", syscall.SIGKILL}} {
		t.Run(tc.name, func(t *testing.T) {
			f.answersWithin(t, "/proxy/web/", 30*time.Second)
			before := f.waitContainer(t, "web", service.Started, 10*time.Second)
			p.Stop(t, tc.sig)
			p.Start(t)
			f.answersWithin(t, "/proxy/web/", 60*time.Second)
			after := f.waitContainer(t, "web", service.Started, 10*time.Second)
			if after.ContainerID == before.ContainerID {
				t.Errorf("the service answers from the container of before the restart (%s)", after.ContainerID)
			}
			tasks, err := f.eng.List(ctx, map[string]string{runtime.LabelService: "web"})
			if err != nil {
				t.Fatal(err)
			}
			if len(tasks) != 1 || !tasks[0].Running {
				t.Errorf("after the restart the service has %d container(s): %+v; want the one running", len(tasks), tasks)
			}
		})
	}
}
