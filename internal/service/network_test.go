package service_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
	"github.com/berthproject/berth/internal/service"
)

// newBusyboxFixture is newFixture for services built on the tiny busybox image, so these tests
// need no language base.
func newBusyboxFixture(t *testing.T, mutate func(*service.Config)) (*fixture, string) {
	t.Helper()
	eng := enginetest.Require(t)
	img := enginetest.Busybox(t, eng)
	f := fixtureOn(t, eng, mutate)
	f.start(t)
	return f, img
}

// busyboxContext is a service folder: a Dockerfile and a container.json.
func busyboxContext(dockerfile, containerJSON string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct{ name, body string }{{"Dockerfile", dockerfile}, {"container.json", containerJSON}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(f.body))
	}
	tw.Close()
	return buf.Bytes()
}

func (f *fixture) createBusybox(t *testing.T, name, dockerfile, containerJSON string) service.Service {
	t.Helper()
	if _, err := f.m.Create(context.Background(), "", name, "", busyboxContext(dockerfile, containerJSON)); err != nil {
		t.Fatal(err)
	}
	return f.waitImage(t, name, service.ImageReady)
}

// webService serves body at / on 8080 (busybox httpd).
func webService(img, body string) string {
	return fmt.Sprintf(`FROM %s
USER 0
RUN mkdir -p /www && echo %s > /www/index.html
USER 1000
EXPOSE 8080
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
`, img, body)
}

// probeService asks TARGET_HOST:TARGET_PORT and the name TARGET_NAME for their page when it
// starts, writes what happened to /probe, then serves it on 8080.
func probeService(img string) string {
	return fmt.Sprintf(`FROM %s
EXPOSE 8080
CMD ["sh", "-c", "mkdir -p /tmp/www; for target in \"$TARGET_HOST $TARGET_PORT\" \"$TARGET_NAME $TARGET_PORT\"; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 $target > /tmp/out 2>&1 && echo \"$target: REACHED $(cat /tmp/out)\" || echo \"$target: BLOCKED\"; done > /tmp/www/probe; exec httpd -f -p 8080 -h /tmp/www"]
`, img)
}

// TestServiceCannotReachAnotherService: a service's container cannot open a connection to
// another service's container, by address or by name, while berth's proxy reaches both.
func TestServiceCannotReachAnotherService(t *testing.T) {
	f, img := newBusyboxFixture(t, nil)
	f.createBusybox(t, "target", webService(img, "secret-of-target"), `{"on_demand": true, "storage": 0}`)
	if code, body := f.get(t, "/proxy/target/"); code != 200 || !strings.Contains(body, "secret-of-target") {
		t.Fatalf("the proxy does not reach the target: %d %q", code, body)
	}
	host, port, err := net.SplitHostPort(f.m.Addr("target"))
	if err != nil {
		t.Fatal(err)
	}
	f.createBusybox(t, "prober", probeService(img),
		fmt.Sprintf(`{"on_demand": true, "storage": 0, "env": {"TARGET_HOST": %q, "TARGET_PORT": %q, "TARGET_NAME": "target"}}`, host, port))
	code, probe := f.get(t, "/proxy/prober/probe")
	if code != 200 || strings.Count(probe, "BLOCKED") != 2 || strings.Contains(probe, "secret-of-target") {
		t.Fatalf("one service reached another directly (%d):\n%s", code, probe)
	}
	if code, body := f.get(t, "/proxy/target/"); code != 200 || !strings.Contains(body, "secret-of-target") {
		t.Fatalf("the proxy no longer reaches the target: %d %q", code, body)
	}
}

// loopbackListener counts the connections the host's loopback port receives.
func loopbackListener(t *testing.T) (port int, accepted *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, accepted
}

// buildProbe is a service whose RUN step lists its network interfaces and tries the host's
// loopback port, printing both into the build log.
func buildProbe(img string, port int) string {
	return fmt.Sprintf(`FROM %s
RUN echo "interfaces: $(ls /sys/class/net | tr '\n' ' ')"; if printf x | nc -w 3 127.0.0.1 %d; then echo "loopback: reached"; else echo "loopback: unreachable"; fi
EXPOSE 8080
CMD ["httpd", "-f", "-p", "8080", "-h", "/tmp"]
`, img, port)
}

func buildLine(t *testing.T, f *fixture, name, prefix string) string {
	t.Helper()
	b, err := os.ReadFile(f.m.BuildLogPath(name))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		// The engine may put a terminal colour reset before a step's output.
		if _, after, ok := strings.Cut(l, prefix); ok && !strings.Contains(l, "echo") {
			return strings.TrimSpace(after)
		}
	}
	t.Fatalf("no %q line in the build log:\n%s", prefix, b)
	return ""
}

// TestServiceBuildIsNotOnHostNetwork: a service's RUN steps do not see the host's interfaces
// and cannot reach a port on the host's loopback; by default they have a bridge network (so
// apt-get works).
func TestServiceBuildIsNotOnHostNetwork(t *testing.T) {
	f, img := newBusyboxFixture(t, nil)
	port, accepted := loopbackListener(t)
	f.createBusybox(t, "builder", buildProbe(img, port), `{"on_demand": true, "storage": 0}`)
	if got := buildLine(t, f, "builder", "interfaces:"); got != "eth0 lo" {
		t.Errorf("the build's interfaces are %q, want a bridge's (eth0 lo)", got)
	}
	if got := buildLine(t, f, "builder", "loopback:"); got != "unreachable" || accepted.Load() != 0 {
		t.Errorf("the build reached the host's loopback: %q, %d connection(s)", got, accepted.Load())
	}
}

// TestServiceBuildNetworkNone: an admin may take the network away from service builds.
func TestServiceBuildNetworkNone(t *testing.T) {
	f, img := newBusyboxFixture(t, func(c *service.Config) { c.BuildNetwork = service.BuildNetworkNone })
	port, accepted := loopbackListener(t)
	f.createBusybox(t, "offline", buildProbe(img, port), `{"on_demand": true, "storage": 0}`)
	if got := buildLine(t, f, "offline", "interfaces:"); got != "lo" {
		t.Errorf("the build's interfaces are %q, want only lo", got)
	}
	if accepted.Load() != 0 {
		t.Error("the build reached the host's loopback")
	}
	if err := service.CheckBuildNetwork("host"); err == nil || !strings.Contains(err.Error(), "allowed: bridge, none") {
		t.Errorf("host as a build network: %v", err)
	}
}

// TestServiceNetworkLifecycle: a service's network is made when it starts, labelled as berth's
// and this instance's, joined by its container alone; it survives an idle stop and a restart of
// berth (the running service is re-adopted), goes when a user stops the service, and a network
// no service owns is removed when berth starts.
func TestServiceNetworkLifecycle(t *testing.T) {
	f, img := newBusyboxFixture(t, nil)
	ctx := context.Background()
	f.createBusybox(t, "life", webService(img, "alive"), `{"on_demand": true, "storage": 0}`)
	own := map[string]string{"berth.managed": "true", "berth.instance": f.cfg.Instance, "berth.service": "life"}
	nets := func() []string {
		t.Helper()
		n, err := f.eng.ListNetworks(ctx, own)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := nets(); len(n) != 0 {
		t.Fatalf("networks before the first start: %v", n)
	}
	if code, _ := f.get(t, "/proxy/life/"); code != 200 {
		t.Fatal("first request failed")
	}
	want := f.cfg.ServiceNetwork("life")
	if n := nets(); len(n) != 1 || n[0] != want {
		t.Fatalf("networks of a running service: %v, want [%s]", n, want)
	}
	before, _ := f.m.Get(ctx, "life")

	// berth restarts: the container is re-adopted on its network, not started again.
	f.m.Close()
	f.start(t)
	after, _ := f.m.Get(ctx, "life")
	if after.ContainerState != service.Started || after.ContainerID != before.ContainerID {
		t.Fatalf("after restart: %s %s (was %s)", after.ContainerState, after.ContainerID, before.ContainerID)
	}
	if code, _ := f.get(t, "/proxy/life/"); code != 200 {
		t.Fatal("the re-adopted service does not answer")
	}

	// An idle stop keeps the network; a user's stop removes it.
	if err := f.m.Stop(ctx, "life", true); err != nil {
		t.Fatal(err)
	}
	if n := nets(); len(n) != 1 {
		t.Fatalf("networks after an idle stop: %v", n)
	}
	if code, _ := f.get(t, "/proxy/life/"); code != 200 {
		t.Fatal("request after an idle stop failed")
	}
	if err := f.m.Stop(ctx, "life", false); err != nil {
		t.Fatal(err)
	}
	if n := nets(); len(n) != 0 {
		t.Fatalf("networks after a user's stop: %v", n)
	}

	// A network of this instance no service owns (a deleted service's) goes at start-up.
	orphan := f.cfg.ServiceNetwork("gone")
	labels := map[string]string{"berth.kind": "service", "berth.instance": f.cfg.Instance, "berth.service": "gone"}
	for k, v := range f.cfg.ExtraLabels {
		labels[k] = v
	}
	if err := f.eng.CreateNetwork(ctx, orphan, labels, runtime.NetworkOptions{}); err != nil {
		t.Fatal(err)
	}
	f.m.Close()
	f.start(t)
	if n, _ := f.eng.ListNetworks(ctx, map[string]string{"berth.instance": f.cfg.Instance, "berth.service": "gone"}); len(n) != 0 {
		t.Fatalf("an orphan service network survived the start: %v", n)
	}
}
