package service

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/berthproject/berth/internal/runtime"
)

// ErrInUse: the service is serving a request or connection, or its image is being built.
var ErrInUse = errors.New("service: in use")

// Delete removes a service and everything berth made for it: its container (stopped first),
// its network, its images, its stored build context and build log, and its record with its
// history. A service with a request or connection in flight, or a build running, is ErrInUse
// unless force (which stops it anyway; a build is always waited for by the caller retrying).
// It returns what went, in words.
func (m *Manager) Delete(ctx context.Context, name string, force bool) ([]string, error) {
	if !m.Exists(ctx, name) {
		return nil, fmt.Errorf("service %s: %w", name, ErrNotFound)
	}
	row, err := m.st.GetService(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("delete service %s: %w", name, err)
	}
	s := m.svc(name)
	if n := s.active.Load(); n > 0 && !force {
		return nil, fmt.Errorf("service %s has %d request(s) or connection(s) in flight: stop it first, or delete with force: %w", name, n, ErrInUse)
	}
	if row.ImageState == ImageValidating || row.ImageState == ImagePendingValidation {
		return nil, fmt.Errorf("service %s's image is being built (%s): delete it once the build ends: %w", name, row.ImageState, ErrInUse)
	}
	// The network is said to go only when there is one (a service never started has none).
	netName, hadNet := m.cfg.ServiceNetwork(name), false
	nw, hasNetworks := m.rt.(Networks)
	if hasNetworks {
		names, err := nw.ListNetworks(ctx, m.own(name))
		if err != nil {
			return nil, fmt.Errorf("delete service %s: list networks: %w", name, err)
		}
		for _, n := range names {
			hadNet = hadNet || n == netName
		}
	}
	var removed []string
	if row.ContainerID != "" {
		removed = append(removed, "container "+shortID(row.ContainerID))
	}
	if err := m.Stop(ctx, name, false); err != nil {
		return removed, fmt.Errorf("delete service %s: stop: %w", name, err)
	}
	// From now on the proxy does not know it: no request starts it again.
	m.mu.Lock()
	delete(m.known, name)
	delete(m.svcs, name)
	m.mu.Unlock()
	m.modes.Delete(name)
	// A start that slipped in between the stop and forgetting left a container: remove it.
	if ts, err := m.rt.List(ctx, m.own(name)); err == nil {
		for _, t := range ts {
			if err := m.rt.Remove(ctx, t.ID); err != nil {
				return removed, fmt.Errorf("delete service %s: remove container: %w", name, err)
			}
		}
	}
	if hasNetworks {
		if err := nw.RemoveNetwork(ctx, netName); err != nil {
			return removed, fmt.Errorf("delete service %s: remove network: %w", name, err)
		}
		if hadNet {
			removed = append(removed, "network "+netName)
		}
	}
	sel := map[string]string{runtime.LabelManaged: "true", runtime.LabelKind: runtime.KindService, runtime.LabelService: name}
	if m.cfg.Instance != "" {
		sel[runtime.LabelInstance] = m.cfg.Instance
	}
	imgs, err := m.rt.ListImages(ctx, sel)
	if err != nil {
		return removed, fmt.Errorf("delete service %s: list images: %w", name, err)
	}
	for _, img := range imgs {
		if err := m.rt.RemoveImage(ctx, img.ID); err != nil {
			return removed, fmt.Errorf("delete service %s: remove image %s: %w", name, img.ID, err)
		}
		what := shortID(img.ID)
		if len(img.Tags) > 0 {
			what = img.Tags[0]
		}
		removed = append(removed, "image "+what)
	}
	if _, err := os.Stat(m.dir(name)); err == nil {
		if err := os.RemoveAll(m.dir(name)); err != nil {
			return removed, fmt.Errorf("delete service %s: remove its build context: %w", name, err)
		}
		removed = append(removed, "build context and build log")
	}
	if err := m.st.DeleteService(ctx, name); err != nil {
		return removed, fmt.Errorf("delete service %s: %w", name, err)
	}
	removed = append(removed, "record and history")
	return removed, nil
}

func shortID(id string) string {
	if len(id) > 19 && id[:7] == "sha256:" {
		return id[7:19]
	}
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
