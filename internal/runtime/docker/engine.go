// Package docker is berth's Docker Engine backend: the only package that imports the Docker
// SDK. It converts runtime.TaskSpec into Engine API calls and classifies the engine's errors
// into runtime's sentinels.
package docker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"

	"github.com/berthproject/berth/internal/runtime"
)

// Options configure the connection.
type Options struct {
	// Host is the engine's address; "" uses DOCKER_HOST or the default socket.
	Host string
	// Instance, when set, is added as the berth.instance label to every task this engine
	// starts that does not carry one.
	Instance string
}

// Engine is a runtime.Runtime (and runtime.Builder) on one Docker Engine.
type Engine struct {
	cli  *client.Client
	opts Options

	capsMu sync.Mutex
	caps   *runtime.Capabilities // the first successful probe
}

var (
	_ runtime.Runtime   = (*Engine)(nil)
	_ runtime.Builder   = (*Engine)(nil)
	_ runtime.Prober    = (*Engine)(nil)
	_ runtime.LogTailer = (*Engine)(nil)
)

// New connects to the engine, negotiating the API version (the oldest engine berth supports
// speaks 1.41), and checks that it answers.
func New(ctx context.Context, o Options) (*Engine, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if o.Host != "" {
		opts = append(opts, client.WithHost(o.Host))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker: %w: %v", runtime.ErrUnavailable, err)
	}
	if _, err := cli.Ping(ctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("docker engine at %s does not answer: %w (%v)", cli.DaemonHost(), runtime.ErrUnavailable, err)
	}
	cli.NegotiateAPIVersion(ctx)
	return &Engine{cli: cli, opts: o}, nil
}

// Close releases the connection.
func (e *Engine) Close() error { return e.cli.Close() }

// Name is "docker".
func (e *Engine) Name() string { return "docker" }

// APIVersion is the negotiated Engine API version.
func (e *Engine) APIVersion() string { return e.cli.ClientVersion() }

// classify maps an engine error to runtime's sentinels, keeping the engine's message.
func classify(what string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", what, err)
	case cerrdefs.IsNotFound(err) || client.IsErrNotFound(err):
		return fmt.Errorf("%s: %w: %s", what, runtime.ErrNotFound, clean(err))
	case cerrdefs.IsConflict(err):
		return fmt.Errorf("%s: %w: %s", what, runtime.ErrConflict, clean(err))
	case client.IsErrConnectionFailed(err) || cerrdefs.IsUnavailable(err):
		return fmt.Errorf("%s: %w: %s", what, runtime.ErrUnavailable, clean(err))
	}
	return fmt.Errorf("%s: %s", what, clean(err))
}

// clean trims the engine's "Error response from daemon: " prefix.
func clean(err error) string {
	return strings.TrimPrefix(err.Error(), "Error response from daemon: ")
}

func labelFilter(labels map[string]string) []string {
	var out []string
	for k, v := range labels {
		if v == "" {
			out = append(out, k)
		} else {
			out = append(out, k+"="+v)
		}
	}
	return out
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
