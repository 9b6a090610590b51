package service_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
	"github.com/berthproject/berth/internal/service"
)

// busyboxFixture is a service manager of its own instance (its own store and data dir, as a
// second berth server on the same engine would have), whose services are busybox httpd.
func busyboxFixture(t *testing.T) (*fixture, string) {
	t.Helper()
	eng := enginetest.Require(t)
	f := fixtureOn(t, eng, nil)
	f.start(t)
	return f, f.cfg.Instance
}

// httpdContext is a service folder: busybox httpd on port 8080 serving one page that says body,
// with the given container.json ("" for on demand, no storage).
func httpdContext(t *testing.T, img, body, containerJSON string) []byte {
	if containerJSON == "" {
		containerJSON = `{"on_demand": true, "storage": 0}`
	}
	t.Helper()
	files := map[string]string{
		"Dockerfile":     fmt.Sprintf("FROM %s\nCOPY index.html /www/index.html\nEXPOSE 8080\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n", img),
		"index.html":     body + "\n",
		"container.json": containerJSON,
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write([]byte(data))
	}
	tw.Close()
	return buf.Bytes()
}

// TestTwoInstancesRunAServiceOfTheSameName: two berths on one engine both define `echo`; both
// run it at once, each answering through its own proxy, and neither start removes the other's
// container.
func TestTwoInstancesRunAServiceOfTheSameName(t *testing.T) {
	a, instA := busyboxFixture(t)
	b, instB := busyboxFixture(t)
	img := enginetest.Busybox(t, a.eng)
	ctx := context.Background()
	for _, x := range []struct {
		f    *fixture
		body string
	}{{a, "from-a"}, {b, "from-b"}} {
		if _, err := x.f.m.Create(ctx, "", "echo", "", httpdContext(t, img, x.body, "")); err != nil {
			t.Fatal(err)
		}
		x.f.waitImage(t, "echo", service.ImageReady)
	}
	if code, body := a.get(t, "/proxy/echo/"); code != 200 || !strings.Contains(body, "from-a") {
		t.Fatalf("a: %d %q", code, body)
	}
	first, _ := a.m.Get(ctx, "echo")
	if code, body := b.get(t, "/proxy/echo/"); code != 200 || !strings.Contains(body, "from-b") {
		t.Fatalf("b: %d %q", code, body)
	}
	if code, body := a.get(t, "/proxy/echo/"); code != 200 || !strings.Contains(body, "from-a") {
		t.Fatalf("a after b started: %d %q", code, body)
	}
	if s, _ := a.m.Get(ctx, "echo"); s.ContainerID != first.ContainerID || starts(s) != 1 {
		t.Fatalf("a's service was started again (container %s, was %s; %d starts)", s.ContainerID, first.ContainerID, starts(s))
	}
	for _, inst := range []string{instA, instB} {
		ts, err := a.eng.List(ctx, map[string]string{runtime.LabelInstance: inst, runtime.LabelService: "echo"})
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != 1 || !ts[0].Running {
			t.Fatalf("instance %s: containers %+v, want one running", inst, ts)
		}
		if !strings.Contains(ts[0].Name, inst) {
			t.Errorf("container name %q does not carry the instance %s", ts[0].Name, inst)
		}
	}
	// A restart of one re-adopts its own and leaves the other's alone.
	b.m.Close()
	b.start(t)
	if code, body := a.get(t, "/proxy/echo/"); code != 200 || !strings.Contains(body, "from-a") {
		t.Fatalf("a after b restarted: %d %q", code, body)
	}
	if code, body := b.get(t, "/proxy/echo/"); code != 200 || !strings.Contains(body, "from-b") {
		t.Fatalf("b after its restart: %d %q", code, body)
	}
}
