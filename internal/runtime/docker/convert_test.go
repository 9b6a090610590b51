package docker

import (
	"strings"
	"testing"

	"github.com/docker/docker/api/types/system"

	"github.com/berthproject/berth/internal/runtime"
)

func TestContainerConfigAppliesSecurityAndLimits(t *testing.T) {
	cfg, hc, _, err := containerConfig(runtime.TaskSpec{
		Image: "img", Cmd: []string{"sh", "x"}, Env: map[string]string{"B": "2", "A": "1"},
		Labels:       map[string]string{"k": "v"},
		Mounts:       []runtime.Mount{{Source: "/h/code", Target: "/code", ReadOnly: true}, {Source: "/h/data", Target: "/data"}},
		Tmpfs:        []runtime.Tmpfs{{Target: "/tmp", SizeBytes: 1 << 20}},
		Limits:       runtime.Limits{NanoCPUs: 5e8, MemoryBytes: 64 << 20, PidsLimit: 50, ShmSizeBytes: 1 << 20},
		Security:     runtime.Security{User: "1000:1000", ReadOnlyRootfs: true, DropAllCaps: true, NoNewPrivileges: true},
		ExposedPorts: []int{8080},
		Init:         true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if hc.Init == nil || !*hc.Init {
		t.Errorf("init %v, want true", hc.Init)
	}
	if _, plain, _, _ := containerConfig(runtime.TaskSpec{Image: "img"}); plain.Init != nil {
		t.Errorf("init %v without TaskSpec.Init, want the engine's default (nil)", *plain.Init)
	}
	if strings.Join(cfg.Env, ",") != "A=1,B=2" || cfg.User != "1000:1000" || cfg.Labels[runtime.LabelManaged] != "true" {
		t.Errorf("config: %+v", cfg)
	}
	if hc.NetworkMode != "none" {
		t.Errorf("network %q, want none by default", hc.NetworkMode)
	}
	if !hc.ReadonlyRootfs || hc.Privileged || len(hc.CapDrop) != 1 || hc.CapDrop[0] != "ALL" ||
		len(hc.SecurityOpt) != 1 || hc.SecurityOpt[0] != "no-new-privileges:true" {
		t.Errorf("security: ro %v priv %v capdrop %v secopt %v", hc.ReadonlyRootfs, hc.Privileged, hc.CapDrop, hc.SecurityOpt)
	}
	if hc.Memory != 64<<20 || hc.MemorySwap != hc.Memory || hc.NanoCPUs != 5e8 || *hc.PidsLimit != 50 || hc.ShmSize != 1<<20 {
		t.Errorf("limits: mem %d swap %d cpu %d pids %d shm %d", hc.Memory, hc.MemorySwap, hc.NanoCPUs, *hc.PidsLimit, hc.ShmSize)
	}
	if !strings.Contains(hc.Tmpfs["/tmp"], "size=1048576") || !strings.Contains(hc.Tmpfs["/tmp"], "nosuid") {
		t.Errorf("tmpfs %q", hc.Tmpfs["/tmp"])
	}
	if len(hc.Mounts) != 2 || !hc.Mounts[0].ReadOnly || hc.Mounts[1].ReadOnly {
		t.Errorf("mounts %+v", hc.Mounts)
	}
	if len(hc.PortBindings) != 0 || hc.PublishAllPorts {
		t.Errorf("ports are published on the host: %+v", hc.PortBindings)
	}
	if _, ok := cfg.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("exposed ports %+v", cfg.ExposedPorts)
	}
}

func TestContainerConfigRefuses(t *testing.T) {
	for name, ts := range map[string]runtime.TaskSpec{
		"host network":    {Image: "i", Network: "host"},
		"docker socket":   {Image: "i", Mounts: []runtime.Mount{{Source: "/var/run/docker.sock", Target: "/s"}}},
		"relative source": {Image: "i", Mounts: []runtime.Mount{{Source: "data", Target: "/d"}}},
		"no image":        {},
	} {
		if _, _, _, err := containerConfig(ts); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The engine's init binary is what says whether a task may run under an init.
func TestCapabilitiesSayWhetherAnInitRuns(t *testing.T) {
	if c := capabilitiesFromInfo(system.Info{InitBinary: "docker-init"}); !c.Init || c.InitBinary != "docker-init" || strings.Contains(c.String(), "no init process") {
		t.Errorf("with an init binary: %+v %q", c, c)
	}
	if c := capabilitiesFromInfo(system.Info{}); c.Init || !strings.Contains(c.String(), "no init process") {
		t.Errorf("without an init binary: %+v %q", c, c)
	}
}
