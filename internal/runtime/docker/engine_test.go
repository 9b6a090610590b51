package docker_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

func labels(t *testing.T) map[string]string {
	l := enginetest.Labels(t)
	l["berth.test-run"] = enginetest.Unique(t)
	return l
}

func start(t *testing.T, e *docker.Engine, ts runtime.TaskSpec) runtime.TaskID {
	t.Helper()
	id, err := e.Start(context.Background(), ts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Remove(context.Background(), id) })
	return id
}

func TestStartWaitLogsKeepStreamsApart(t *testing.T) {
	e := enginetest.Require(t)
	img := enginetest.Busybox(t, e)
	l := labels(t)
	enginetest.Cleanup(t, e, l)
	ctx := context.Background()
	id := start(t, e, runtime.TaskSpec{Image: img, Labels: l, Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}})
	ex, err := e.Wait(ctx, id)
	// The engine stamps start and finish from different clocks: a very short run may finish a
	// few microseconds "before" it started.
	if err != nil || ex.Code != 3 || ex.FinishedAt.Before(ex.StartedAt.Add(-10*time.Millisecond)) {
		t.Fatalf("wait: %+v %v", ex, err)
	}
	// Waiting again on an exited task answers at once.
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if ex2, err := e.Wait(c, id); err != nil || ex2.Code != 3 {
		t.Fatalf("second wait: %+v %v", ex2, err)
	}
	var out, errb bytes.Buffer
	if err := e.Logs(ctx, id, false, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if out.String() != "out\n" || errb.String() != "err\n" {
		t.Fatalf("stdout %q stderr %q", out.String(), errb.String())
	}
	tasks, err := e.List(ctx, l)
	if err != nil || len(tasks) != 1 || tasks[0].ID != id || tasks[0].Running {
		t.Fatalf("list: %+v %v", tasks, err)
	}
	if err := e.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.Remove(ctx, id); err != nil {
		t.Fatalf("removing an absent task: %v", err)
	}
	if _, err := e.Wait(ctx, id); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("wait on a removed task: %v", err)
	}
}

func TestStopKillsAfterGrace(t *testing.T) {
	e := enginetest.Require(t)
	img := enginetest.Busybox(t, e)
	l := labels(t)
	enginetest.Cleanup(t, e, l)
	ctx := context.Background()
	id := start(t, e, runtime.TaskSpec{Image: img, Labels: l, Cmd: []string{"sleep", "300"}})
	if err := e.Stop(ctx, id, time.Second); err != nil {
		t.Fatal(err)
	}
	ex, err := e.Wait(ctx, id)
	if err != nil || ex.Code != 137 {
		t.Fatalf("after stop: %+v %v", ex, err)
	}
	if err := e.Stop(ctx, id, time.Second); err != nil {
		t.Fatalf("stopping a stopped task: %v", err)
	}
}

func TestBuildErrorCarriesLogAndImportLabels(t *testing.T) {
	e := enginetest.Require(t)
	l := labels(t)
	enginetest.Cleanup(t, e, l)
	ctx := context.Background()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY missing-file /x\n"), 0o644)
	_, err := e.BuildImage(ctx, runtime.BuildSpec{ContextDir: dir, Tags: []string{"berth/test-bad:" + l["berth.test-run"]}, Labels: l}, nil)
	var be *runtime.BuildError
	if !errors.As(err, &be) || !strings.Contains(be.Log, "COPY missing-file") {
		t.Fatalf("bad build: %v", err)
	}
	// Import a one-file root filesystem.
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		bb, _ = os.ReadFile("/usr/bin/busybox")
	}
	var tarBuf bytes.Buffer
	writeTar(t, &tarBuf, "busybox", bb)
	ref := "berth/test-import:" + l["berth.test-run"]
	img, err := e.ImportImage(ctx, &tarBuf, ref, []string{`CMD ["/busybox", "true"]`}, l)
	if err != nil {
		t.Fatal(err)
	}
	if img.Labels[runtime.LabelTest] != "1" || img.Labels[runtime.LabelManaged] != "true" {
		t.Fatalf("imported labels %+v", img.Labels)
	}
	imgs, err := e.ListImages(ctx, l)
	if err != nil || len(imgs) != 1 {
		t.Fatalf("list images: %+v %v", imgs, err)
	}
	n, err := e.Sweep(ctx, l)
	if err != nil || n != 1 {
		t.Fatalf("sweep removed %d (%v)", n, err)
	}
	if _, err := e.InspectImage(ctx, ref); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("image after sweep: %v", err)
	}
}

func TestAddressOnBerthNetwork(t *testing.T) {
	e := enginetest.Require(t)
	img := enginetest.Busybox(t, e)
	l := labels(t)
	enginetest.Cleanup(t, e, l)
	ctx := context.Background()
	netName := "berth-test-" + l["berth.test-run"]
	if err := e.CreateNetwork(ctx, netName, l, runtime.NetworkOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.CreateNetwork(ctx, netName, l, runtime.NetworkOptions{}); err != nil {
		t.Fatalf("second create: %v", err)
	}
	id := start(t, e, runtime.TaskSpec{Image: img, Labels: l, Network: netName, NetworkAliases: []string{"svc"},
		Cmd: []string{"sleep", "30"}, ExposedPorts: []int{8080}})
	addr, err := e.Address(ctx, id, 8080)
	if err != nil || !strings.HasSuffix(addr, ":8080") {
		t.Fatalf("address %q %v", addr, err)
	}
	e.Remove(ctx, id)
	if err := e.RemoveNetwork(ctx, netName); err != nil {
		t.Fatal(err)
	}
}

func TestRawRunAndGPURefusal(t *testing.T) {
	e := enginetest.Require(t)
	img := enginetest.Busybox(t, e)
	l := labels(t)
	enginetest.Cleanup(t, e, l)
	ctx := context.Background()
	if err := e.RawRun(ctx, runtime.TaskSpec{Image: img, Labels: l, Cmd: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.RawRun(ctx, runtime.TaskSpec{Image: img, Labels: l, Cmd: []string{"false"}}); err == nil {
		t.Fatal("a failing raw run reported success")
	}
	if tasks, _ := e.List(ctx, l); len(tasks) != 0 {
		t.Fatalf("raw runs left %d containers", len(tasks))
	}
	_, err := e.Start(ctx, runtime.TaskSpec{Image: img, Labels: l, Cmd: []string{"true"}, Limits: runtime.Limits{GPUs: 1}})
	if err == nil || !strings.Contains(err.Error(), "gpu") {
		t.Fatalf("gpu without a GPU runtime: %v", err)
	}
}
