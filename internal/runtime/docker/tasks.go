package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/berthproject/berth/internal/runtime"
)

// Start creates and starts a task. If the start fails the container is removed.
func (e *Engine) Start(ctx context.Context, t runtime.TaskSpec) (runtime.TaskID, error) {
	if e.opts.Instance != "" {
		if _, ok := t.Labels[runtime.LabelInstance]; !ok {
			labels := map[string]string{runtime.LabelInstance: e.opts.Instance}
			for k, v := range t.Labels {
				labels[k] = v
			}
			t.Labels = labels
		}
	}
	cfg, hc, nc, err := containerConfig(t)
	if err != nil {
		return "", fmt.Errorf("start task: %w", err)
	}
	if err := e.checkMounts(t.Mounts); err != nil {
		return "", fmt.Errorf("start task: %w", err)
	}
	if t.Limits.GPUs > 0 {
		// Refused here only when the probe says so; without an answer the engine decides.
		if c, err := e.Capabilities(ctx); err == nil && !c.GPU() {
			return "", fmt.Errorf("start task: %d gpu(s) requested but the engine has no GPU runtime", t.Limits.GPUs)
		}
	}
	if t.Init {
		// Refused here only when the probe says so; without an answer the engine decides.
		if c, err := e.Capabilities(ctx); err == nil && !c.Init {
			return "", fmt.Errorf("start task: %w", errNoInit)
		}
	}
	// The create is not cancelled half-way: an aborted request may still leave a container the
	// engine made, with no ID to remove it by. A cancelled ctx is honoured right after.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()
	created, err := e.cli.ContainerCreate(cctx, cfg, hc, nc, nil, t.Name)
	if err != nil {
		return "", classify("create container", err)
	}
	id := runtime.TaskID(created.ID)
	err = ctx.Err()
	if err == nil {
		err = e.cli.ContainerStart(ctx, created.ID, container.StartOptions{})
	}
	if err != nil {
		e.cli.ContainerRemove(cctx, created.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		if t.Init && missingInit(err) {
			return "", fmt.Errorf("start container: %w (the engine said: %s)", errNoInit, clean(err))
		}
		return "", classify("start container", err)
	}
	return id, nil
}

// errNoInit: the task asks for an init process the engine cannot run.
var errNoInit = errors.New("the engine cannot run an init process (its init binary, docker-init by default, is not configured or not installed: install tini as docker-init, or set dockerd's init-path)")

// missingInit says whether a start failed for the engine's init binary.
func missingInit(err error) bool {
	m := err.Error()
	return strings.Contains(m, "docker-init") || (strings.Contains(m, "init") && strings.Contains(m, "executable file not found"))
}

// Wait blocks until the task is not running and reports how it ended.
func (e *Engine) Wait(ctx context.Context, id runtime.TaskID) (runtime.Exit, error) {
	okc, errc := e.cli.ContainerWait(ctx, string(id), container.WaitConditionNotRunning)
	select {
	case <-okc:
	case err := <-errc:
		if ctx.Err() == nil && streamBroke(err) {
			// The engine went away while the task ran (stopped, restarted, crashed).
			return runtime.Exit{}, fmt.Errorf("wait for container: %w: the connection to the engine ended: %v", runtime.ErrUnavailable, err)
		}
		return runtime.Exit{}, classify("wait for container", err)
	case <-ctx.Done():
		return runtime.Exit{}, ctx.Err()
	}
	ins, err := e.cli.ContainerInspect(ctx, string(id))
	if err != nil {
		return runtime.Exit{}, classify("inspect container", err)
	}
	ex := runtime.Exit{}
	if st := ins.State; st != nil {
		ex.Code = st.ExitCode
		ex.OOMKilled = st.OOMKilled
		ex.Error = st.Error
		ex.StartedAt, _ = time.Parse(time.RFC3339Nano, st.StartedAt)
		ex.FinishedAt, _ = time.Parse(time.RFC3339Nano, st.FinishedAt)
	}
	return ex, nil
}

// streamBroke reports an answer cut off by the engine going away (its connection closed or
// reset half-way), as opposed to an answer the engine gave.
func streamBroke(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// Logs copies the task's stdout and stderr, demultiplexed, into the two writers.
func (e *Engine) Logs(ctx context.Context, id runtime.TaskID, follow bool, stdout, stderr io.Writer) error {
	return e.logs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: follow}, stdout, stderr)
}

// LogsTail copies the last lines log entries of the task, demultiplexed, into the two writers.
func (e *Engine) LogsTail(ctx context.Context, id runtime.TaskID, lines int, stdout, stderr io.Writer) error {
	if lines <= 0 {
		return nil
	}
	return e.logs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(lines)}, stdout, stderr)
}

func (e *Engine) logs(ctx context.Context, id runtime.TaskID, opts container.LogsOptions, stdout, stderr io.Writer) error {
	rc, err := e.cli.ContainerLogs(ctx, string(id), opts)
	if err != nil {
		return classify("container logs", err)
	}
	defer rc.Close()
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	if _, err := stdcopy.StdCopy(stdout, stderr, rc); err != nil && ctx.Err() == nil {
		return fmt.Errorf("container logs: %w", err)
	}
	return ctx.Err()
}

// Stop stops the task, killing it after grace. A stopped task is a no-op; an absent one
// returns ErrNotFound.
func (e *Engine) Stop(ctx context.Context, id runtime.TaskID, grace time.Duration) error {
	secs := int(math.Ceil(grace.Seconds()))
	return classify("stop container", e.cli.ContainerStop(ctx, string(id), container.StopOptions{Timeout: &secs}))
}

// Remove removes the task and its anonymous volumes, killing it if needed. Absent is fine.
func (e *Engine) Remove(ctx context.Context, id runtime.TaskID) error {
	if id == "" {
		return nil
	}
	err := e.cli.ContainerRemove(ctx, string(id), container.RemoveOptions{Force: true, RemoveVolumes: true})
	err = classify("remove container", err)
	if err == nil || isNotFound(err) {
		return nil
	}
	return err
}

// List returns the tasks carrying every label, running or not.
func (e *Engine) List(ctx context.Context, labels map[string]string) ([]runtime.TaskStatus, error) {
	f := filters.NewArgs()
	for _, l := range labelFilter(labels) {
		f.Add("label", l)
	}
	cs, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, classify("list containers", err)
	}
	out := make([]runtime.TaskStatus, 0, len(cs))
	for _, c := range cs {
		name := ""
		if len(c.Names) > 0 {
			name = c.Names[0]
		}
		out = append(out, runtime.TaskStatus{
			ID: runtime.TaskID(c.ID), Name: name, Image: c.Image, Labels: c.Labels,
			State: string(c.State), Running: c.State == "running", Created: time.Unix(c.Created, 0),
		})
	}
	return out, nil
}

// Address is ip:port of the task on its network (never a published host port).
func (e *Engine) Address(ctx context.Context, id runtime.TaskID, port int) (string, error) {
	ins, err := e.cli.ContainerInspect(ctx, string(id))
	if err != nil {
		return "", classify("inspect container", err)
	}
	if ins.NetworkSettings != nil {
		for _, ep := range ins.NetworkSettings.Networks {
			if ep != nil && ep.IPAddress != "" {
				return net.JoinHostPort(ep.IPAddress, strconv.Itoa(port)), nil
			}
		}
	}
	return "", fmt.Errorf("address of %s: the container has no network address", id)
}

// RawRun is the benchmark's baseline: create, start, wait, remove, straight on the Engine
// API with the same configuration Start uses, and nothing else.
func (e *Engine) RawRun(ctx context.Context, t runtime.TaskSpec) error {
	cfg, hc, nc, err := containerConfig(t)
	if err != nil {
		return err
	}
	c, err := e.cli.ContainerCreate(ctx, cfg, hc, nc, nil, "")
	if err != nil {
		return classify("create container", err)
	}
	defer e.cli.ContainerRemove(context.WithoutCancel(ctx), c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err := e.cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		return classify("start container", err)
	}
	okc, errc := e.cli.ContainerWait(ctx, c.ID, container.WaitConditionNotRunning)
	select {
	case r := <-okc:
		if r.StatusCode != 0 {
			return fmt.Errorf("raw run exited %d", r.StatusCode)
		}
	case err := <-errc:
		return classify("wait for container", err)
	}
	return nil
}
