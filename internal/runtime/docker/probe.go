package docker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/system"

	"github.com/berthproject/berth/internal/runtime"
)

// probeQuotaSize is the root filesystem size the quota probe asks for.
const probeQuotaSize = "1G"

// Capabilities says what the engine can enforce. The first successful probe is kept for the
// life of the Engine; a failed one returns its error and the next call probes again.
// Concurrent first calls share one probe.
func (e *Engine) Capabilities(ctx context.Context) (runtime.Capabilities, error) {
	e.capsMu.Lock()
	defer e.capsMu.Unlock()
	if e.caps != nil {
		return *e.caps, nil
	}
	c, err := e.probe(ctx)
	if err != nil {
		return runtime.Capabilities{}, fmt.Errorf("probe the engine's capabilities: %w", err)
	}
	e.caps = &c
	return c, nil
}

func (e *Engine) probe(ctx context.Context) (runtime.Capabilities, error) {
	inf, err := e.cli.Info(ctx)
	if err != nil {
		return runtime.Capabilities{}, classify("engine info", err)
	}
	c := capabilitiesFromInfo(inf)
	if c.BackingFilesystem == "" && strings.HasPrefix(e.cli.DaemonHost(), "unix://") {
		c.BackingFilesystem = backingFilesystem(inf.DockerRootDir)
	}
	c.StorageQuota, c.StorageQuotaReason, err = e.probeQuotaFrom(ctx, e.probeBase(ctx))
	if err != nil {
		return runtime.Capabilities{}, err
	}
	return c, nil
}

// capabilitiesFromInfo reads what the engine reports about itself.
func capabilitiesFromInfo(inf system.Info) runtime.Capabilities {
	c := runtime.Capabilities{
		Engine:        "docker " + inf.ServerVersion,
		StorageDriver: inf.Driver,
		CgroupVersion: inf.CgroupVersion,
		CPUs:          inf.NCPU,
		MemoryBytes:   inf.MemTotal,
		MemoryLimit:   inf.MemoryLimit,
		SwapLimit:     inf.SwapLimit,
		CPUQuota:      inf.CPUCfsQuota,
		PidsLimit:     inf.PidsLimit,
		// The engine names its init binary when it has one configured; whether the file is
		// really there shows only when a task starts with it (see Start).
		Init:       inf.InitBinary != "",
		InitBinary: inf.InitBinary,
	}
	for _, kv := range inf.DriverStatus {
		if kv[0] == "Backing Filesystem" {
			c.BackingFilesystem = kv[1]
		}
	}
	for name := range inf.Runtimes {
		if strings.Contains(name, "nvidia") {
			c.GPURuntimes = append(c.GPURuntimes, name)
		}
	}
	sort.Strings(c.GPURuntimes)
	return c
}

// probeBase is a base image berth already has, to create the quota probe from ("" if none).
func (e *Engine) probeBase(ctx context.Context) string {
	bases, err := e.ListImages(ctx, map[string]string{runtime.LabelManaged: "true", runtime.LabelKind: runtime.KindBase})
	if err != nil {
		return ""
	}
	for _, b := range bases {
		for _, t := range b.Tags {
			// An untagged image is listed as "<none>:<none>", which is no reference to create from.
			if !strings.Contains(t, "<none>") {
				return t
			}
		}
	}
	return ""
}

// probeQuotaFrom probes from base, or from an image of its own when base is gone by the time
// the probe's container is created: images built from a base carry its labels, so base may be
// any image derived from one, and something else may remove it meanwhile.
func (e *Engine) probeQuotaFrom(ctx context.Context, base string) (bool, string, error) {
	ok, reason, err := e.probeQuota(ctx, base)
	if base != "" && errorsIs(err, runtime.ErrNotFound) && ctx.Err() == nil {
		return e.probeQuota(ctx, "")
	}
	return ok, reason, err
}

// probeQuota creates (never starts) a throwaway container with a root filesystem size and
// removes it: the engine's answer is the fact, whatever its storage driver is called. It
// creates from ref, or, when ref is "", from an image imported from an empty tarball and
// removed afterwards.
func (e *Engine) probeQuota(ctx context.Context, ref string) (bool, string, error) {
	labels := map[string]string{runtime.LabelManaged: "true", runtime.LabelKind: runtime.KindProbe}
	if e.opts.Instance != "" {
		labels[runtime.LabelInstance] = e.opts.Instance
	}
	cleanup := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	}
	if ref == "" {
		var rnd [6]byte
		rand.Read(rnd[:])
		ref = "berth/probe:" + hex.EncodeToString(rnd[:])
		// 1024 zero bytes are an empty tar archive.
		if _, err := e.ImportImage(ctx, bytes.NewReader(make([]byte, 1024)), ref, nil, labels); err != nil {
			return false, "", fmt.Errorf("quota probe: %w", err)
		}
		defer func() {
			cctx, cancel := cleanup()
			defer cancel()
			e.cli.ImageRemove(cctx, ref, image.RemoveOptions{PruneChildren: true})
		}()
	}
	cfg := &container.Config{Image: ref, Cmd: []string{"/berth-probe"}, Labels: labels, NetworkDisabled: true}
	hc := &container.HostConfig{NetworkMode: "none", StorageOpt: map[string]string{"size": probeQuotaSize}}
	cctx, cancel := cleanup()
	defer cancel()
	created, err := e.cli.ContainerCreate(cctx, cfg, hc, nil, nil, "")
	if err != nil {
		// The engine refusing the size is the answer; not reaching it is an error.
		if cerr := classify("quota probe: create container", err); ctx.Err() != nil ||
			errorsIs(cerr, runtime.ErrUnavailable) || errorsIs(cerr, runtime.ErrNotFound) {
			return false, "", cerr
		}
		return false, clean(err), nil
	}
	if err := e.cli.ContainerRemove(cctx, created.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
		return false, "", classify("quota probe: remove container", err)
	}
	return true, "", nil
}

// backingFilesystem names the filesystem under dir as the engine does (extfs, xfs, ...),
// when the engine runs on this host and did not say.
func backingFilesystem(dir string) string {
	var st syscall.Statfs_t
	if dir == "" || syscall.Statfs(dir, &st) != nil {
		return ""
	}
	switch uint64(st.Type) {
	case 0xEF53:
		return "extfs"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x2FC12FC1:
		return "zfs"
	case 0x01021994:
		return "tmpfs"
	case 0x794C7630:
		return "overlayfs"
	case 0x65735546:
		return "fuse"
	}
	return fmt.Sprintf("filesystem 0x%x", uint64(st.Type))
}
