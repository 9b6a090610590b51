package docker_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// httpServer starts a busybox web server on a network and returns its address once the host
// reaches it.
func httpServer(t *testing.T, e *docker.Engine, img, network string, l map[string]string) string {
	t.Helper()
	ctx := context.Background()
	id := start(t, e, runtime.TaskSpec{Image: img, Labels: l, Network: network, ExposedPorts: []int{8080},
		Cmd: []string{"sh", "-c", "mkdir -p /tmp/www && echo served-on-" + network + " > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"}})
	addr, err := e.Address(ctx, id, 8080)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("the host does not reach %s on %s: %v", addr, network, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fetchFrom runs a container on network that asks http://addr/ for its page and returns what it
// printed (busybox nc: its wget is not usable in a static build).
func fetchFrom(t *testing.T, e *docker.Engine, img, network, addr string, l map[string]string) string {
	t.Helper()
	ctx := context.Background()
	host, port, _ := net.SplitHostPort(addr)
	id := start(t, e, runtime.TaskSpec{Image: img, Labels: l, Network: network,
		Cmd: []string{"sh", "-c", `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 ` + host + " " + port + " 2>&1 && echo REACHED || echo BLOCKED"}})
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := e.Wait(wctx, id); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	e.Logs(ctx, id, false, &out, &out)
	return out.String()
}

// TestSeparateNetworksAreIsolated checks, on this engine, what service isolation rests on: a
// container on one berth network cannot open a connection to a container on another, an
// Isolated network keeps its own members apart too, and the host reaches every one of them at
// its address. A plain network's members reach each other, so the probe can succeed.
func TestSeparateNetworksAreIsolated(t *testing.T) {
	e := enginetest.Require(t)
	img := enginetest.Busybox(t, e)
	l := labels(t)
	enginetest.Cleanup(t, e, l)
	ctx := context.Background()
	run := l["berth.test-run"]
	netA, netB, netC := "berth-test-a-"+run, "berth-test-b-"+run, "berth-test-c-"+run
	for _, n := range []string{netA, netB} {
		if err := e.CreateNetwork(ctx, n, l, runtime.NetworkOptions{Isolated: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.CreateNetwork(ctx, netC, l, runtime.NetworkOptions{}); err != nil {
		t.Fatal(err)
	}
	addrA := httpServer(t, e, img, netA, l)
	addrB := httpServer(t, e, img, netB, l)
	addrC := httpServer(t, e, img, netC, l)

	if out := fetchFrom(t, e, img, netC, addrC, l); !strings.Contains(out, "served-on-"+netC) {
		t.Fatalf("a member of a plain network does not reach another: %q", out)
	}
	if out := fetchFrom(t, e, img, netA, addrB, l); !strings.Contains(out, "BLOCKED") || strings.Contains(out, "served-on") {
		t.Fatalf("a container on %s reached one on %s: %q", netA, netB, out)
	}
	if out := fetchFrom(t, e, img, netC, addrA, l); !strings.Contains(out, "BLOCKED") || strings.Contains(out, "served-on") {
		t.Fatalf("a container on %s reached one on %s: %q", netC, netA, out)
	}
	if out := fetchFrom(t, e, img, netA, addrA, l); !strings.Contains(out, "BLOCKED") || strings.Contains(out, "served-on") {
		t.Fatalf("a member of an isolated network reached another member: %q", out)
	}

	names, err := e.ListNetworks(ctx, l)
	slices.Sort(names)
	if err != nil || !slices.Equal(names, []string{netA, netB, netC}) {
		t.Fatalf("list networks: %v %v", names, err)
	}
}

// TestCreateNetworkRefusesAForeignNetwork: a network of the same name that berth did not make
// is never joined.
func TestCreateNetworkRefusesAForeignNetwork(t *testing.T) {
	e := enginetest.Require(t)
	l := labels(t)
	ctx := context.Background()
	name := "berth-test-foreign-" + l["berth.test-run"]
	// Made by someone else: no berth.managed label.
	if out, err := exec.Command("docker", "network", "create", name).CombinedOutput(); err != nil {
		t.Skipf("docker CLI: %v %s", err, out)
	}
	t.Cleanup(func() { e.RemoveNetwork(context.Background(), name) })
	err := e.CreateNetwork(ctx, name, l, runtime.NetworkOptions{})
	if !errors.Is(err, runtime.ErrConflict) {
		t.Fatalf("joining a foreign network: %v", err)
	}
}
