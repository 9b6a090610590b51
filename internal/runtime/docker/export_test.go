package docker

import "context"

// ProbeQuotaFromEmptyImage runs the quota probe on an image imported from an empty tarball.
func (e *Engine) ProbeQuotaFromEmptyImage(ctx context.Context) (bool, string, error) {
	return e.probeQuota(ctx, "")
}

// ProbeQuotaFrom runs the quota probe from base, as the capability probe does.
func (e *Engine) ProbeQuotaFrom(ctx context.Context, base string) (bool, string, error) {
	return e.probeQuotaFrom(ctx, base)
}
