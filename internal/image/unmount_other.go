//go:build !linux

package image

// unmountUnder is a no-op where debootstrap does not run.
func unmountUnder(string) {}
