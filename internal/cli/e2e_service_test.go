package cli_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

type serviceView struct {
	ImageState     string `json:"image_state"`
	ImageReason    string `json:"image_reason"`
	ContainerState string `json:"container_state"`
	ContainerID    string `json:"container_id"`
	Events         []struct {
		Kind, State string
	} `json:"events"`
}

// TestServiceThroughServer: create the example service, reach it through the proxy with an
// admin token and with a token scoped to it, open a WebSocket, restart the server and find it
// re-adopted and still answering.
func TestServiceThroughServer(t *testing.T) {
	_, dataDir, name, _ := serviceSetup(t, "echo")
	addr, maddr := freePort(t), freePort(t)
	s := startServer(t, dataDir, addr, "--metrics-listen", maddr)
	env := []string{"BERTH_SERVER=http://" + addr, "BERTH_TOKEN=" + s.token}

	if r := berth(t, env, "service", "create", "../../examples/service-echo", "--name", name); r.code != 0 {
		t.Fatalf("create: %d %s %s", r.code, r.stdout, r.stderr)
	}
	get := func() serviceView {
		t.Helper()
		r := berth(t, env, "service", "get", name, "-o", "json")
		var v serviceView
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Fatalf("service get: %v %s %s", err, r.stdout, r.stderr)
		}
		return v
	}
	for deadline := time.Now().Add(3 * time.Minute); get().ImageState != "READY"; time.Sleep(200 * time.Millisecond) {
		if v := get(); v.ImageState == "ERROR" || time.Now().After(deadline) {
			t.Fatalf("image: %+v", v)
		}
	}
	call := func(token, path string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := call(s.token, "/proxy/"+name+"/hi"); code != 200 || !strings.Contains(body, `"path": "/hi"`) || !strings.Contains(body, `"authorization": null`) {
		t.Fatalf("through the proxy: %d %s", code, body)
	}
	if code, _ := call("nope", "/proxy/"+name+"/hi"); code != 401 {
		t.Fatalf("without a valid token: %d", code)
	}
	// A token scoped to the service reaches it, and nothing else.
	out, err := exec.Command(berthBinary(t), "--data-dir", dataDir, "token", "create", "--name", "svc", "--scope", "service:"+name).Output()
	if err != nil {
		t.Fatal(err)
	}
	scoped := strings.TrimSpace(string(out))
	if code, _ := call(scoped, "/proxy/"+name+"/"); code != 200 {
		t.Fatalf("scoped token on its service: %d", code)
	}
	if code, _ := call(scoped, "/api/v1/jobs"); code != 403 {
		t.Fatalf("scoped token on the API: %d", code)
	}
	// A WebSocket through the proxy.
	cmd := exec.Command(berthBinary(t), "service", "ws", name, "/ws")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader("hello\nworld\n")
	if out, err := cmd.CombinedOutput(); err != nil || string(out) != "hello\nworld\n" {
		t.Fatalf("websocket: %v %q", err, out)
	}
	before := get()
	if before.ContainerState != "STARTED" {
		t.Fatalf("before restart: %+v", before)
	}
	// What a scrape of the metrics listener (no token) says of the service and its proxy.
	_, metrics := scrape(t, "http://"+maddr+"/metrics")
	for _, want := range []string{
		`berth_service_starts_total{result="ok",service="` + name + `"} 1`,
		`berth_service_cold_start_seconds_count{service="` + name + `"} 1`,
		`berth_service_state{service="` + name + `",state="STARTED"} 1`,
		`berth_service_state{service="` + name + `",state="STOPPED"} 0`,
		`berth_proxy_requests_total{code="2xx",service="` + name + `"} 2`,
		`berth_proxy_requests_total{code="1xx",service="` + name + `"} 1`,
		`berth_proxy_request_duration_seconds_count{service="` + name + `"} 3`,
		`berth_proxy_websockets_open{service="` + name + `"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", metrics)
	}

	// Restart the server: the running service is re-adopted, not restarted.
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
	s2 := startServer(t, dataDir, addr)
	after := get()
	if after.ContainerState != "STARTED" || after.ContainerID != before.ContainerID {
		t.Fatalf("after restart: %+v (was %s)", after, before.ContainerID)
	}
	if code, _ := call(s2.token, "/proxy/"+name+"/again"); code != 200 {
		t.Fatal("the re-adopted service does not answer")
	}
	n := 0
	for _, e := range get().Events {
		if e.Kind == "container" && e.State == "STARTING" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d starts; the restart should adopt, not start", n)
	}
	if r := berth(t, env, "service", "stop", name); r.code != 0 || !strings.Contains(r.stdout, "STOPPED") {
		t.Fatalf("stop: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := berth(t, env, "service", "context", name, "-O", filepath.Join(t.TempDir(), "ctx.tar")); r.code != 0 {
		t.Fatalf("context download: %d %s", r.code, r.stderr)
	}
}
