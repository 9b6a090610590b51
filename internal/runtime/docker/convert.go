package docker

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/berthproject/berth/internal/runtime"
)

// containerConfig converts a TaskSpec into the Engine API's create configuration. It is pure:
// what the engine cannot do (GPUs, storage quotas) is checked by the caller.
func containerConfig(t runtime.TaskSpec) (*container.Config, *container.HostConfig, *network.NetworkingConfig, error) {
	if t.Image == "" {
		return nil, nil, nil, fmt.Errorf("task has no image")
	}
	netMode := t.Network
	switch netMode {
	case "":
		netMode = "none"
	case "host":
		return nil, nil, nil, fmt.Errorf("network %q: the host network is never given to a task", netMode)
	}
	env := make([]string, 0, len(t.Env))
	for k, v := range t.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	labels := map[string]string{}
	for k, v := range t.Labels {
		labels[k] = v
	}
	labels[runtime.LabelManaged] = "true"

	cfg := &container.Config{
		Image:      t.Image,
		Env:        env,
		WorkingDir: t.WorkingDir,
		Labels:     labels,
		User:       t.Security.User,
	}
	if t.Entrypoint != nil {
		cfg.Entrypoint = t.Entrypoint
	}
	if t.Cmd != nil {
		cfg.Cmd = t.Cmd
	}
	if len(t.ExposedPorts) > 0 {
		cfg.ExposedPorts = nat.PortSet{}
		for _, p := range t.ExposedPorts {
			cfg.ExposedPorts[nat.Port(strconv.Itoa(p)+"/tcp")] = struct{}{}
		}
	}

	hc := &container.HostConfig{
		NetworkMode:    container.NetworkMode(netMode),
		ReadonlyRootfs: t.Security.ReadOnlyRootfs,
		Privileged:     false,
		CapAdd:         t.Security.CapAdd,
		Tmpfs:          map[string]string{},
	}
	if t.Init {
		init := true
		hc.Init = &init
	}
	if t.Security.DropAllCaps {
		hc.CapDrop = []string{"ALL"}
	}
	if t.Security.NoNewPrivileges {
		hc.SecurityOpt = []string{"no-new-privileges:true"}
	}
	l := t.Limits
	hc.NanoCPUs = l.NanoCPUs
	if l.MemoryBytes > 0 {
		hc.Memory = l.MemoryBytes
		hc.MemorySwap = l.MemoryBytes // memory+swap = memory: no swap
	}
	if l.PidsLimit > 0 {
		p := l.PidsLimit
		hc.PidsLimit = &p
	}
	if l.ShmSizeBytes > 0 {
		hc.ShmSize = l.ShmSizeBytes
	}
	if l.GPUs > 0 {
		hc.DeviceRequests = []container.DeviceRequest{{Count: l.GPUs, Capabilities: [][]string{{"gpu"}}}}
	}
	if l.StorageBytes > 0 {
		hc.StorageOpt = map[string]string{"size": strconv.FormatInt(l.StorageBytes, 10)}
	}
	for _, tf := range t.Tmpfs {
		opts := "rw,nosuid,nodev,mode=1777"
		if tf.SizeBytes > 0 {
			opts += ",size=" + strconv.FormatInt(tf.SizeBytes, 10)
		}
		if tf.Options != "" {
			opts += "," + tf.Options
		}
		hc.Tmpfs[tf.Target] = opts
	}
	for _, m := range t.Mounts {
		if !filepath.IsAbs(m.Source) || !filepath.IsAbs(m.Target) {
			return nil, nil, nil, fmt.Errorf("mount %s -> %s: source and target must be absolute", m.Source, m.Target)
		}
		if isEngineSocket(m.Source) {
			return nil, nil, nil, fmt.Errorf("mount %s: the engine's socket is never given to a task", m.Source)
		}
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	var nc *network.NetworkingConfig
	if len(t.NetworkAliases) > 0 && netMode != "none" && netMode != "bridge" {
		nc = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			netMode: {Aliases: t.NetworkAliases},
		}}
	}
	return cfg, hc, nc, nil
}

func isEngineSocket(p string) bool {
	base := filepath.Base(filepath.Clean(p))
	return base == "docker.sock" || strings.HasSuffix(base, "containerd.sock")
}
