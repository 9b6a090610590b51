package docker

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"

	"github.com/berthproject/berth/internal/runtime"
)

// CreateNetwork makes a bridge network berth owns (idempotent). A network of that name that
// berth did not make is refused, never joined.
func (e *Engine) CreateNetwork(ctx context.Context, name string, labels map[string]string, o runtime.NetworkOptions) error {
	if nw, err := e.cli.NetworkInspect(ctx, name, network.InspectOptions{}); err == nil {
		if nw.Labels[runtime.LabelManaged] != "true" {
			return fmt.Errorf("create network %s: a network of that name exists and berth did not make it: %w", name, runtime.ErrConflict)
		}
		return nil
	}
	all := map[string]string{runtime.LabelManaged: "true"}
	for k, v := range labels {
		all[k] = v
	}
	opts := map[string]string{}
	if o.Isolated {
		// Members of the bridge cannot reach one another; the host still reaches each.
		opts["com.docker.network.bridge.enable_icc"] = "false"
	}
	_, err := e.cli.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Labels: all, Options: opts})
	if err = classify("create network "+name, err); err != nil && !isConflict(err) {
		return err
	}
	return nil
}

// ListNetworks returns the names of the networks that carry every given label.
func (e *Engine) ListNetworks(ctx context.Context, labels map[string]string) ([]string, error) {
	if len(labels) == 0 {
		return nil, fmt.Errorf("list networks: refusing to list without labels")
	}
	f := filters.NewArgs()
	for _, l := range labelFilter(labels) {
		f.Add("label", l)
	}
	nets, err := e.cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return nil, classify("list networks", err)
	}
	out := make([]string, 0, len(nets))
	for _, nw := range nets {
		out = append(out, nw.Name)
	}
	return out, nil
}

// RemoveNetwork removes a network; an absent one is fine.
func (e *Engine) RemoveNetwork(ctx context.Context, name string) error {
	err := classify("remove network "+name, e.cli.NetworkRemove(ctx, name))
	if err == nil || isNotFound(err) {
		return nil
	}
	return err
}

// Sweep force-removes every container, then network, then image carrying all the labels, and
// returns how many objects it removed.
func (e *Engine) Sweep(ctx context.Context, labels map[string]string) (int, error) {
	if len(labels) == 0 {
		return 0, fmt.Errorf("sweep: refusing to sweep without labels")
	}
	f := filters.NewArgs()
	for _, l := range labelFilter(labels) {
		f.Add("label", l)
	}
	n := 0
	cs, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return n, classify("sweep containers", err)
	}
	for _, c := range cs {
		if err := e.Remove(ctx, runtime.TaskID(c.ID)); err != nil {
			return n, err
		}
		n++
	}
	nets, err := e.cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return n, classify("sweep networks", err)
	}
	for _, nw := range nets {
		if err := e.RemoveNetwork(ctx, nw.ID); err != nil {
			return n, err
		}
		n++
	}
	imgs, err := e.cli.ImageList(ctx, image.ListOptions{Filters: f})
	if err != nil {
		return n, classify("sweep images", err)
	}
	for _, im := range imgs {
		if _, err := e.cli.ImageRemove(ctx, im.ID, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
			if err := classify("sweep image", err); !isNotFound(err) {
				return n, err
			}
		}
		n++
	}
	return n, nil
}

func isConflict(err error) bool { return err != nil && errorsIs(err, runtime.ErrConflict) }
