package docker_test

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// TestCapabilitiesAreProbed: what the probe reports matches `docker info`; a storage quota is
// reported exactly when the engine creates a task with a root filesystem size; a failed probe
// is not remembered; the probe leaves nothing behind.
func TestCapabilitiesAreProbed(t *testing.T) {
	enginetest.Require(t)
	dockerCmd, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("the docker command is not installed")
	}
	ctx := context.Background()
	instance := "test-" + enginetest.Unique(t)
	e, err := docker.New(ctx, docker.Options{Instance: instance})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	mine := map[string]string{runtime.LabelInstance: instance}
	enginetest.Cleanup(t, e, mine)

	// A probe that cannot reach the engine fails, and is tried again by the next call.
	dead, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := e.Capabilities(dead); err == nil {
		t.Fatal("a probe on a cancelled context succeeded")
	}
	c, err := e.Capabilities(ctx)
	if err != nil {
		t.Fatalf("the probe after a failed one: %v", err)
	}
	t.Logf("engine: %s", c)

	out, err := exec.Command(dockerCmd, "info", "--format",
		"{{.ServerVersion}}|{{.Driver}}|{{.CgroupVersion}}|{{.NCPU}}|{{.MemTotal}}|{{.SwapLimit}}|{{.PidsLimit}}|{{range $k, $v := .Runtimes}}{{$k}},{{end}}").Output()
	if err != nil {
		t.Fatalf("docker info: %v", err)
	}
	f := strings.Split(strings.TrimSpace(string(out)), "|")
	ncpu, _ := strconv.Atoi(f[3])
	mem, _ := strconv.ParseInt(f[4], 10, 64)
	if c.Engine != "docker "+f[0] || c.StorageDriver != f[1] || c.CgroupVersion != f[2] || c.CPUs != ncpu ||
		c.MemoryBytes != mem || strconv.FormatBool(c.SwapLimit) != f[5] || strconv.FormatBool(c.PidsLimit) != f[6] {
		t.Fatalf("probed %+v, docker info says %q", c, f)
	}
	if c.GPU() != strings.Contains(f[7], "nvidia") {
		t.Fatalf("GPU runtimes %v, docker info lists %s", c.GPURuntimes, f[7])
	}
	if !strings.Contains(c.String(), "cgroup v"+f[2]) || !strings.Contains(c.String(), f[1]) {
		t.Fatalf("summary %q does not say the cgroup version and the storage driver", c)
	}

	// The quota answer is the engine's: a task with a root filesystem size is created exactly
	// when the probe says so.
	img := enginetest.Busybox(t, e)
	id, err := e.Start(ctx, runtime.TaskSpec{Image: img, Labels: mine, Cmd: []string{"true"},
		Limits: runtime.Limits{StorageBytes: 1 << 30}})
	if err == nil {
		e.Remove(ctx, id)
	}
	if c.StorageQuota != (err == nil) {
		t.Fatalf("the probe says quota %v (%s), a task with a size: %v", c.StorageQuota, c.StorageQuotaReason, err)
	}
	if c.StorageDriver == "fuse-overlayfs" && (c.StorageQuota || c.StorageQuotaReason == "") {
		t.Fatalf("fuse-overlayfs has no per-container quota; probed %v %q", c.StorageQuota, c.StorageQuotaReason)
	}
	if !c.StorageQuota && !strings.Contains(c.String(), "no per-container disk quota") {
		t.Fatalf("summary %q does not say there is no quota", c)
	}

	// The same answer from an image imported from an empty tarball, which is removed after.
	q, reason, err := e.ProbeQuotaFromEmptyImage(ctx)
	if err != nil || q != c.StorageQuota {
		t.Fatalf("probe on an empty image: %v %q %v", q, reason, err)
	}
	// A base that is gone by the time the probe creates its container (another process
	// removed an image derived from a base, which carries the base's labels): the same answer
	// from an image of the probe's own, not an error.
	q, reason, err = e.ProbeQuotaFrom(ctx, "berth/test-gone:"+enginetest.Unique(t))
	if err != nil || q != c.StorageQuota {
		t.Fatalf("probe from a base that is gone: %v %q %v", q, reason, err)
	}
	time.Sleep(100 * time.Millisecond)
	probes := map[string]string{runtime.LabelInstance: instance, runtime.LabelKind: runtime.KindProbe}
	if ts, err := e.List(ctx, probes); err != nil || len(ts) != 0 {
		t.Fatalf("probe containers left: %+v %v", ts, err)
	}
	if ims, err := e.ListImages(ctx, probes); err != nil || len(ims) != 0 {
		t.Fatalf("probe images left: %+v %v", ims, err)
	}
}
