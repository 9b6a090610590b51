package docker

import (
	"context"
	"fmt"

	"github.com/berthproject/berth/internal/runtime"
)

// CanApply says whether the engine can apply limits it does not always support, from the
// probed capabilities: GPUs need a GPU runtime, a root filesystem size needs a storage quota.
func (e *Engine) CanApply(ctx context.Context, l runtime.Limits) error {
	c, err := e.Capabilities(ctx)
	if err != nil {
		return err
	}
	if l.GPUs > 0 && !c.GPU() {
		return fmt.Errorf("the engine has no GPU runtime")
	}
	if l.StorageBytes > 0 && !c.StorageQuota {
		return fmt.Errorf("the engine's storage (%s) has no per-container quota: %s", c.StorageDriver, c.StorageQuotaReason)
	}
	return nil
}

// TaskLimits reads back the limits a running task got, as the engine reports them (inspect).
func (e *Engine) TaskLimits(ctx context.Context, id runtime.TaskID) (runtime.Limits, error) {
	ins, err := e.cli.ContainerInspect(ctx, string(id))
	if err != nil {
		return runtime.Limits{}, classify("inspect container", err)
	}
	hc := ins.HostConfig
	l := runtime.Limits{NanoCPUs: hc.NanoCPUs, MemoryBytes: hc.Memory, ShmSizeBytes: hc.ShmSize}
	if hc.PidsLimit != nil {
		l.PidsLimit = *hc.PidsLimit
	}
	for _, d := range hc.DeviceRequests {
		l.GPUs += d.Count
	}
	return l, nil
}
