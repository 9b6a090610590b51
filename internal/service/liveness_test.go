package service_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
	"github.com/berthproject/berth/internal/service"
)

// scriptContext is a service folder on the busybox image: index.html says "ok", and the
// container runs script with sh -c (it must serve /www on port 8080).
func scriptContext(t *testing.T, img, script string) []byte {
	t.Helper()
	files := map[string]string{
		"Dockerfile": fmt.Sprintf("FROM %s\nCOPY index.html /www/index.html\nEXPOSE 8080\nCMD [\"sh\", \"-c\", %s]\n",
			img, strconv.Quote(script)),
		"index.html":     "ok\n",
		"container.json": `{"on_demand": true, "storage": 0}`,
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

// scriptFixture is a busybox service manager (stop grace as given) with one ready service
// running script.
func scriptFixture(t *testing.T, name, script string, grace time.Duration) *fixture {
	t.Helper()
	eng := enginetest.Require(t)
	f := fixtureOn(t, eng, func(c *service.Config) { c.StopGrace = grace })
	f.start(t)
	img := enginetest.Busybox(t, eng)
	if _, err := f.m.Create(context.Background(), "", name, "", scriptContext(t, img, script)); err != nil {
		t.Fatal(err)
	}
	f.waitImage(t, name, service.ImageReady)
	return f
}

func (f *fixture) mustAnswer(t *testing.T, name string) service.Service {
	t.Helper()
	if code, body := f.get(t, "/proxy/"+name+"/"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("request to %s: %d %q", name, code, body)
	}
	return f.waitContainer(t, name, service.Started, 10*time.Second)
}

// A STARTED service whose container ends behind berth's back (killed, or exiting on its own)
// is noticed within seconds: ERROR with the exit code and the container's last output, or
// STOPPED when it exited 0; the next request starts it again and it answers.
func TestDeadContainerIsNoticedAndStartedAgain(t *testing.T) {
	// SIGTERM makes the app exit 0; SIGKILL ends it with 137.
	f := scriptFixture(t, "live", `echo "app is up, pid $$"; trap "exit 0" TERM; httpd -f -p 8080 -h /www & wait`, time.Second)
	for _, tc := range []struct {
		signal, state, reason string
	}{
		{"KILL", service.Error, "exit code 137"},
		{"TERM", service.Stopped, "exit code 0"},
	} {
		t.Run(tc.signal, func(t *testing.T) {
			before := f.mustAnswer(t, "live")
			enginetest.Kill(t, before.ContainerID, tc.signal)
			start := time.Now()
			s := f.waitContainer(t, "live", tc.state, 30*time.Second)
			t.Logf("%s noticed after %s: %s", tc.state, time.Since(start).Round(time.Millisecond), s.ContainerReason)
			if !strings.Contains(s.ContainerReason, tc.reason) {
				t.Errorf("reason %q does not say %q", s.ContainerReason, tc.reason)
			}
			if tc.state == service.Error && !strings.Contains(s.ContainerReason, "app is up") {
				t.Errorf("reason %q does not show the container's last output", s.ContainerReason)
			}
			if f.m.Addr("live") != "" {
				t.Errorf("the proxy still forwards to the dead container at %s", f.m.Addr("live"))
			}
			after := f.mustAnswer(t, "live")
			if after.ContainerID == before.ContainerID {
				t.Errorf("the service answers from the dead container %s", after.ContainerID)
			}
		})
	}
}

// A service runs under an init process: the app is not PID 1, so an app that does not handle
// SIGTERM (PID 1 would ignore it) stops at once instead of after the whole grace period.
func TestServiceRunsUnderAnInitAndStopsPromptly(t *testing.T) {
	const grace = 10 * time.Second
	f := scriptFixture(t, "init", `mkdir -p /tmp/www && cp /www/index.html /tmp/www/ && echo $$ > /tmp/www/pid && exec httpd -f -p 8080 -h /tmp/www`, grace)
	f.mustAnswer(t, "init")
	code, body := f.get(t, "/proxy/init/pid")
	if code != 200 {
		t.Fatalf("pid: %d %q", code, body)
	}
	if pid := strings.TrimSpace(body); pid == "1" {
		t.Fatalf("the app runs as PID 1: the service has no init process")
	}
	start := time.Now()
	if err := f.m.Stop(context.Background(), "init", false); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("stop took %s (grace %s)", took.Round(time.Millisecond), grace)
	if took >= grace {
		t.Errorf("the stop waited for the whole grace period (%s)", took)
	}
}

// A request arriving while the service stops waits for the stop, then starts it again and is
// served; the history has no ERROR.
func TestRequestDuringStopIsServed(t *testing.T) {
	// The app ignores SIGTERM even under an init: the stop takes the grace period.
	f := scriptFixture(t, "slow", `trap "" TERM; exec httpd -f -p 8080 -h /www`, 3*time.Second)
	ctx := context.Background()
	f.mustAnswer(t, "slow")
	stopped := make(chan error, 1)
	go func() { stopped <- f.m.Stop(ctx, "slow", false) }()
	f.waitContainer(t, "slow", service.PendingStop, 10*time.Second)
	if code, body := f.get(t, "/proxy/slow/"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("request during the stop: %d %q", code, body)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
	s := f.waitContainer(t, "slow", service.Started, 10*time.Second)
	var states []string
	for _, e := range s.Events {
		if e.Kind == "container" {
			states = append(states, e.State)
			if e.State == service.Error {
				t.Errorf("ERROR in the history: %s", e.Reason)
			}
		}
	}
	if got, want := strings.Join(states, ","), "PENDING_START,STARTING,STARTED,PENDING_STOP,STOPPED,PENDING_START,STARTING,STARTED"; got != want {
		t.Errorf("transitions %s, want %s", got, want)
	}
}
