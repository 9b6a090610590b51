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

// PruneDangling removes berth's untagged images: what a failed build leaves of its finished
// steps, and earlier builds of a tag that has moved on (they inherit berth.managed from the
// base they were built on). With parent set, only the images built directly on it. An image a
// container still uses stays. Run it when no build is under way: a build's finished steps are
// untagged until it ends. It returns how many went.
func (e *Engine) PruneDangling(ctx context.Context, parent string) (int, error) {
	f := filters.NewArgs()
	f.Add("dangling", "true")
	f.Add("label", runtime.LabelManaged+"=true")
	imgs, err := e.cli.ImageList(ctx, image.ListOptions{All: true, Filters: f})
	if err != nil {
		return 0, classify("list dangling images", err)
	}
	n := 0
	for _, im := range imgs {
		if parent != "" && im.ParentID != parent {
			continue
		}
		if _, err := e.cli.ImageRemove(ctx, im.ID, image.RemoveOptions{PruneChildren: true}); err == nil {
			n++
		}
	}
	return n, nil
}

// DanglingChildren lists the untagged images built directly on parent.
func (e *Engine) DanglingChildren(ctx context.Context, parent string) ([]string, error) {
	f := filters.NewArgs()
	f.Add("dangling", "true")
	imgs, err := e.cli.ImageList(ctx, image.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, classify("list images", err)
	}
	var out []string
	for _, im := range imgs {
		if im.ParentID == parent {
			out = append(out, im.ID)
		}
	}
	return out, nil
}
