package block

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/job/jobtest"
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
` + cgroupProbe + `
if [ -e /var/run/docker.sock ] || [ -e /run/docker.sock ]; then echo "socket=present"; else echo "socket=absent"; fi
echo "dockerhost=${DOCKER_HOST:-unset}"
echo "config=$(cat /data/config.json | tr -d ' \n')"
`

// cgroupProbe prints the container's limits the same way on cgroup v1 and v2:
// mem (bytes), swap (bytes allowed beyond mem, or none where the kernel does not account
// swap), cpuquota and cpuperiod (µs), pidsmax. CGROUP_ROOT replaces /sys/fs/cgroup in tests.
const cgroupProbe = `
cg=${CGROUP_ROOT:-/sys/fs/cgroup}
if [ -e "$cg/cgroup.controllers" ]; then
  echo "cgroup=v2"
  # A private cgroup namespace shows the container's own cgroup at the root; a shared one
  # shows it at the path /proc/self/cgroup names.
  rel=$(sed -n 's/^0:://p' /proc/self/cgroup)
  if [ -n "$rel" ] && [ -e "$cg$rel/memory.max" ]; then cg="$cg$rel"; fi
  echo "mem=$(cat "$cg/memory.max" 2>/dev/null)"
  echo "swap=$(cat "$cg/memory.swap.max" 2>/dev/null || echo none)"
  set -- $(cat "$cg/cpu.max" 2>/dev/null)
  echo "cpuquota=$1"
  echo "cpuperiod=$2"
  echo "pidsmax=$(cat "$cg/pids.max" 2>/dev/null)"
else
  echo "cgroup=v1"
  mem=$(cat "$cg/memory/memory.limit_in_bytes" 2>/dev/null)
  echo "mem=$mem"
  if memsw=$(cat "$cg/memory/memory.memsw.limit_in_bytes" 2>/dev/null); then
    echo "swap=$((memsw - mem))"
  else
    echo "swap=none"
  fi
  cpu="$cg/cpu"
  [ -e "$cpu/cpu.cfs_quota_us" ] || cpu="$cg/cpu,cpuacct"
  echo "cpuquota=$(cat "$cpu/cpu.cfs_quota_us" 2>/dev/null)"
  echo "cpuperiod=$(cat "$cpu/cpu.cfs_period_us" 2>/dev/null)"
  echo "pidsmax=$(cat "$cg/pids/pids.max" 2>/dev/null)"
fi
`

// limitProblems compares what cgroupProbe printed with the limits a job asked for: memory
// 64 MiB without swap on top, CPU 0.5 (quota/period), 50 processes.
func limitProblems(v map[string]string) []string {
	var bad []string
	if v["mem"] != "67108864" {
		bad = append(bad, fmt.Sprintf("memory limit %q, want 67108864", v["mem"]))
	}
	if v["swap"] != "0" && v["swap"] != "none" {
		bad = append(bad, fmt.Sprintf("swap beyond memory %q, want 0 (or none where swap is not accounted)", v["swap"]))
	}
	quota, err1 := strconv.ParseFloat(v["cpuquota"], 64)
	period, err2 := strconv.ParseFloat(v["cpuperiod"], 64)
	if err1 != nil || err2 != nil || period <= 0 || quota/period != 0.5 {
		bad = append(bad, fmt.Sprintf("cpu quota %q per period %q, want 0.5 of a CPU", v["cpuquota"], v["cpuperiod"]))
	}
	if v["pidsmax"] != "50" {
		bad = append(bad, fmt.Sprintf("pids limit %q, want 50", v["pidsmax"]))
	}
	return bad
}

// TestSecurityDefaults checks DESIGN.md's defaults from inside a real container.
func TestSecurityDefaults(t *testing.T) {
	h := newHarness(t, nil)
	b := h.Block(probe)
	b.Parameters = map[string]any{"who": "probe"}
	b.Limits = spec.Limits{Memory: 64 << 20, CPU: 0.5, Pids: 50}
	j, out := h.Run(t, b)
	if j.State != job.StateSucceeded {
		t.Fatalf("probe: %s/%s %s\n%s", j.State, j.Reason, j.Message, out)
	}
	v := jobtest.ProbeValues(out)
	want := map[string]string{
		"uid": "1000", "gid": "1000",
		"rootfs": "readonly", "data": "writable", "tmp": "writable", "code": "readonly",
		"netifs":     "lo",
		"capeff":     "0000000000000000",
		"capbnd":     "0000000000000000",
		"nonewprivs": "1",
		"socket":     "absent",
		"dockerhost": "unset",
	}
	for k, w := range want {
		if v[k] != w {
			t.Errorf("%s = %q, want %q", k, v[k], w)
		}
	}
	for _, p := range limitProblems(v) {
		t.Errorf("cgroup %s: %s", v["cgroup"], p)
	}
	if !strings.Contains(v["config"], `"parameters":{"who":"probe"}`) {
		t.Errorf("config.json: %s", v["config"])
	}
}

func TestPidsLimitHolds(t *testing.T) {
	h := newHarness(t, nil)
	// A child shell tries to start 60 sleeps and dies when the limit refuses a fork; the
	// outer shell then reads the cgroup's count with builtins only (no fork left to spare).
	b := h.Block(`sh -c 'i=0; while [ $i -lt 60 ]; do sleep 30 & i=$((i+1)); done' 2>/dev/null
if [ -e /sys/fs/cgroup/cgroup.controllers ]; then read cur < /sys/fs/cgroup/pids.current; else read cur < /sys/fs/cgroup/pids/pids.current; fi
echo "procs=$cur"
kill -9 -1 2>/dev/null
exit 0`)
	b.Limits = spec.Limits{Pids: 20}
	j, out := h.Run(t, b)
	v := jobtest.ProbeValues(out)
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
	share := h.Cfg.ShareRoots[0]
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
		b := h.Block("true")
		b.Mounts = []spec.Mount{mt}
		_, err := h.M.Submit(ctx, job.Submission{Block: b, BaseDir: share})
		var pe *job.PolicyError
		if !errors.As(err, &pe) || pe.Field != "mounts[0].source" {
			t.Errorf("mount %s: err %v, want a policy error on mounts[0].source", mt.Source, err)
		}
	}
	// Refused before any container starts: nothing of this instance exists.
	if ts, _ := h.Eng.List(ctx, map[string]string{runtime.LabelInstance: h.Instance}); len(ts) != 0 {
		t.Fatalf("%d containers exist after refused submits", len(ts))
	}
	// Even a share root that holds the engine's socket never hands it out.
	if _, err := os.Stat("/var/run/docker.sock"); err == nil {
		// A manager of its own: the policy is fixed once a manager starts.
		hs := newHarness(t, func(c *job.Config) { c.ShareRoots = append(c.ShareRoots, "/var/run") })
		b := hs.Block("true")
		b.Mounts = []spec.Mount{{Source: "/var/run/docker.sock", Target: "/sock"}}
		if _, err := hs.M.Submit(ctx, job.Submission{Block: b}); err == nil {
			t.Fatal("the engine socket was accepted as a mount")
		}
	}

	// Inside: read-only by default, rw when asked.
	b := h.Block(`cat /input/x.txt; if echo x > /input/new 2>/dev/null; then echo ro=writable; else echo ro=readonly; fi; echo y > /rw/made && echo rw=writable`)
	b.Mounts = []spec.Mount{{Source: "in", Target: "/input"}, {Source: "rw", Target: "/rw", Mode: "rw"}}
	j, out := h.Run(t, b)
	v := jobtest.ProbeValues(out)
	if j.State != job.StateSucceeded || !strings.Contains(out, "shared\n") || v["ro"] != "readonly" || v["rw"] != "writable" {
		t.Fatalf("mounts: %s/%s %q", j.State, j.Reason, out)
	}
}

func TestNetworkPolicy(t *testing.T) {
	h := newHarness(t, nil)
	b := h.Block("true")
	b.Network = "bridge"
	_, err := h.M.Submit(context.Background(), job.Submission{Block: b})
	var pe *job.PolicyError
	if !errors.As(err, &pe) || pe.Field != "network" {
		t.Fatalf("bridge without policy: %v", err)
	}
	b.Network = "host"
	if _, err := h.M.Submit(context.Background(), job.Submission{Block: b}); err == nil || !strings.Contains(err.Error(), "host network is never given") {
		t.Fatalf("host network: %v", err)
	}
}

// TestCgroupProbeReadsBothVersions runs the limits probe over cgroup v1 and v2 layouts, with
// the limits applied and without: the same checks pass for both versions when the limits are
// there, and fail when one is missing.
func TestCgroupProbeReadsBothVersions(t *testing.T) {
	sh, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("no busybox to run the probe with")
	}
	files := func(t *testing.T, tree map[string]string) string {
		root := t.TempDir()
		for name, body := range tree {
			p := filepath.Join(root, name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(body+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return root
	}
	v1 := map[string]string{
		"memory/memory.limit_in_bytes":       "67108864",
		"memory/memory.memsw.limit_in_bytes": "67108864",
		"cpu,cpuacct/cpu.cfs_quota_us":       "50000",
		"cpu,cpuacct/cpu.cfs_period_us":      "100000",
		"pids/pids.max":                      "50",
	}
	v2 := map[string]string{
		"cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc",
		"memory.max":         "67108864",
		"memory.swap.max":    "0",
		"cpu.max":            "50000 100000",
		"pids.max":           "50",
	}
	with := func(base map[string]string, k, v string) map[string]string {
		out := map[string]string{}
		for a, b := range base {
			out[a] = b
		}
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
		return out
	}
	cases := []struct {
		name    string
		version string
		tree    map[string]string
		problem string // "" when every limit holds
	}{
		{"v1", "v1", v1, ""},
		{"v1 without swap accounting", "v1", with(v1, "memory/memory.memsw.limit_in_bytes", ""), ""},
		{"v1 no memory limit", "v1", with(v1, "memory/memory.limit_in_bytes", "9223372036854771712"), "memory limit"},
		{"v1 swap on top", "v1", with(v1, "memory/memory.memsw.limit_in_bytes", "134217728"), "swap"},
		{"v1 no cpu limit", "v1", with(v1, "cpu,cpuacct/cpu.cfs_quota_us", "-1"), "cpu quota"},
		{"v1 no pids limit", "v1", with(v1, "pids/pids.max", "max"), "pids limit"},
		{"v2", "v2", v2, ""},
		{"v2 without swap accounting", "v2", with(v2, "memory.swap.max", ""), ""},
		{"v2 no memory limit", "v2", with(v2, "memory.max", "max"), "memory limit"},
		{"v2 swap on top", "v2", with(v2, "memory.swap.max", "max"), "swap"},
		{"v2 no cpu limit", "v2", with(v2, "cpu.max", "max 100000"), "cpu quota"},
		{"v2 no pids limit", "v2", with(v2, "pids.max", "max"), "pids limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(sh, "sh", "-c", cgroupProbe)
			cmd.Env = append(os.Environ(), "CGROUP_ROOT="+files(t, c.tree))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("probe: %v\n%s", err, out)
			}
			v := jobtest.ProbeValues(string(out))
			if v["cgroup"] != c.version {
				t.Fatalf("read as cgroup %q, want %s:\n%s", v["cgroup"], c.version, out)
			}
			problems := strings.Join(limitProblems(v), "; ")
			if c.problem == "" && problems != "" {
				t.Fatalf("limits applied but: %s\n%s", problems, out)
			}
			if c.problem != "" && !strings.Contains(problems, c.problem) {
				t.Fatalf("a missing %s went unnoticed (problems: %q)\n%s", c.problem, problems, out)
			}
		})
	}
}
