package enginetest

import (
	"context"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// Kill sends a signal (e.g. "KILL") to a container straight through the engine, as someone
// outside berth would with `docker kill`: berth is not told.
func Kill(t testing.TB, id, signal string) {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatalf("engine client: %v", err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cli.ContainerKill(ctx, id, signal); err != nil {
		t.Fatalf("kill %s with %s: %v", id, signal, err)
	}
}
