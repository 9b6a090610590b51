package job

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/spec"
)

// probe is run inside a job's container; each line is key=value for the test to check.
const probe = `
echo "uid=$(id -u)"
echo "gid=$(id -g)"
if touch /etc/berth-probe 2>/dev/null; then echo "rootfs=writable"; else echo "rootfs=readonly"; fi
if touch /data/out/probe 2>/dev/null; then echo "data=writable"; else echo "data=readonly"; fi
if touch /tmp/probe 2>/dev/null; then echo "tmp=writable"; else echo "tmp=readonly"; fi
if touch /code/probe 2>/dev/null; then echo "code=writable"; else echo "code=readonly"; fi
echo "netifs=$(ls /sys/class/net | tr '\n' ' ')"
echo "capeff=$(grep CapEff /proc/self/status | tr -d ' \t' | cut -d: -f2)"
echo "capbnd=$(grep CapBnd /proc/self/status | tr -d ' \t' | cut -d: -f2)"
echo "nonewprivs=$(grep NoNewPrivs /proc/self/status | tr -d ' \t' | cut -d: -f2)"
echo "mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null)"
echo "memsw=$(cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes 2>/dev/null || echo none)"
echo "cpuquota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us)"
echo "pidsmax=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null)"
if [ -e /var/run/docker.sock ] || [ -e /run/docker.sock ]; then echo "socket=present"; else echo "socket=absent"; fi
echo "dockerhost=${DOCKER_HOST:-unset}"
echo "config=$(cat /data/config.json | tr -d ' \n')"
`

func probeValues(out string) map[string]string {
	v := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, val, ok := strings.Cut(line, "="); ok {
			v[k] = strings.TrimSpace(val)
		}
	}
	return v
}

// TestSecurityDefaults checks DESIGN.md's defaults from inside a real container.
func TestSecurityDefaults(t *testing.T) {
	h := newHarness(t, nil)
	b := h.block(probe)
	b.Parameters = map[string]any{"who": "probe"}
	b.Limits = spec.Limits{Memory: 64 << 20, CPU: 0.5, Pids: 50}
	j, out := h.run(t, b)
	if j.State != StateSucceeded {
		t.Fatalf("probe: %s/%s %s\n%s", j.State, j.Reason, j.Message, out)
	}
	v := probeValues(out)
	want := map[string]string{
		"uid": "1000", "gid": "1000",
		"rootfs": "readonly", "data": "writable", "tmp": "writable", "code": "readonly",
		"netifs":     "lo",
		"capeff":     "0000000000000000",
		"capbnd":     "0000000000000000",
		"nonewprivs": "1",
		"mem":        "67108864",
		"cpuquota":   "50000",
		"pidsmax":    "50",
		"socket":     "absent",
		"dockerhost": "unset",
	}
	for k, w := range want {
		if v[k] != w {
			t.Errorf("%s = %q, want %q", k, v[k], w)
		}
	}
	// memory = memory+swap: no swap on top of the limit (where the kernel accounts swap).
	if v["memsw"] != "none" && v["memsw"] != v["mem"] {
		t.Errorf("memory+swap %s != memory %s", v["memsw"], v["mem"])
	}
	if !strings.Contains(v["config"], `"parameters":{"who":"probe"}`) {
		t.Errorf("config.json: %s", v["config"])
	}
}

func TestPidsLimitHolds(t *testing.T) {
	h := newHarness(t, nil)
	// A child shell tries to start 60 sleeps and dies when the limit refuses a fork; the
	// outer shell then reads the cgroup's count with builtins only (no fork left to spare).
	b := h.block(`sh -c 'i=0; while [ $i -lt 60 ]; do sleep 30 & i=$((i+1)); done' 2>/dev/null
read cur < /sys/fs/cgroup/pids/pids.current
echo "procs=$cur"
kill -9 -1 2>/dev/null
exit 0`)
	b.Limits = spec.Limits{Pids: 20}
	j, out := h.run(t, b)
	v := probeValues(out)
	n := 0
	for _, c := range v["procs"] {
		if c < '0' || c > '9' {
			t.Fatalf("procs = %q (job %s/%s, output %q)", v["procs"], j.State, j.Reason, out)
		}
		n = n*10 + int(c-'0')
	}
	// It tried 60: the count stops at the limit (the shell itself is one of them).
	if n < 10 || n > 20 {
		t.Fatalf("%d processes with pids limit 20 after trying 60 (output %q)", n, out)
	}
}

func TestMountsAreConfinedToTheSharingFolder(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	share := h.cfg.ShareRoots[0]
	os.MkdirAll(filepath.Join(share, "in"), 0o755)
	os.WriteFile(filepath.Join(share, "in", "x.txt"), []byte("shared\n"), 0o644)
	os.MkdirAll(filepath.Join(share, "rw"), 0o755)
	os.Chmod(filepath.Join(share, "rw"), 0o777) // the container's user (uid 1000) writes here
	outside := t.TempDir()
	os.Symlink(outside, filepath.Join(share, "escape"))

	refused := []spec.Mount{
		{Source: outside, Target: "/input"},
		{Source: "../", Target: "/input"},
		{Source: "escape", Target: "/input"}, // a link out of the folder
		{Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"},
	}
	for _, mt := range refused {
		b := h.block("true")
		b.Mounts = []spec.Mount{mt}
		_, err := h.m.Submit(ctx, Submission{Block: b, BaseDir: share})
		var pe *PolicyError
		if !errors.As(err, &pe) || pe.Field != "mounts[0].source" {
			t.Errorf("mount %s: err %v, want a policy error on mounts[0].source", mt.Source, err)
		}
	}
	// Refused before any container starts: nothing of this instance exists.
	if ts, _ := h.eng.List(ctx, map[string]string{runtime.LabelInstance: h.instance}); len(ts) != 0 {
		t.Fatalf("%d containers exist after refused submits", len(ts))
	}
	// Even a share root that holds the engine's socket never hands it out.
	if _, err := os.Stat("/var/run/docker.sock"); err == nil {
		h.m.cfg.ShareRoots = append(h.m.cfg.ShareRoots, "/var/run")
		b := h.block("true")
		b.Mounts = []spec.Mount{{Source: "/var/run/docker.sock", Target: "/sock"}}
		if _, err := h.m.Submit(ctx, Submission{Block: b}); err == nil {
			t.Fatal("the engine socket was accepted as a mount")
		}
		h.m.cfg.ShareRoots = h.m.cfg.ShareRoots[:1]
	}

	// Inside: read-only by default, rw when asked.
	b := h.block(`cat /input/x.txt; if echo x > /input/new 2>/dev/null; then echo ro=writable; else echo ro=readonly; fi; echo y > /rw/made && echo rw=writable`)
	b.Mounts = []spec.Mount{{Source: "in", Target: "/input"}, {Source: "rw", Target: "/rw", Mode: "rw"}}
	j, out := h.run(t, b)
	v := probeValues(out)
	if j.State != StateSucceeded || !strings.Contains(out, "shared\n") || v["ro"] != "readonly" || v["rw"] != "writable" {
		t.Fatalf("mounts: %s/%s %q", j.State, j.Reason, out)
	}
}

func TestNetworkPolicy(t *testing.T) {
	h := newHarness(t, nil)
	b := h.block("true")
	b.Network = "bridge"
	_, err := h.m.Submit(context.Background(), Submission{Block: b})
	var pe *PolicyError
	if !errors.As(err, &pe) || pe.Field != "network" {
		t.Fatalf("bridge without policy: %v", err)
	}
	b.Network = "host"
	if _, err := h.m.Submit(context.Background(), Submission{Block: b}); err == nil || !strings.Contains(err.Error(), "host network is never given") {
		t.Fatalf("host network: %v", err)
	}
}
