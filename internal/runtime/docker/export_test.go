package docker

import "context"

// ProbeQuotaFromEmptyImage runs the quota probe on an image imported from an empty tarball.
func (e *Engine) ProbeQuotaFromEmptyImage(ctx context.Context) (bool, string, error) {
	return e.probeQuota(ctx, "")
}
