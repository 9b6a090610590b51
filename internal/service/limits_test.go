package service_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/service"
	"github.com/berthproject/berth/internal/spec"
)

// TestCPUAboveTheEngineIsClampedWithAWarning: a service asking for more cores than the engine
// has is created with a warning that says so, starts on the first request with the engine's
// cores, and answers. Its storage is left at Datagrok's default (21 GB): that is never an
// error at the first request, and never a warning either.
func TestCPUAboveTheEngineIsClampedWithAWarning(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	caps, err := f.eng.Capabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := f.m.Create(ctx, "", "big", "", exampleContext(t, `{"on_demand": true, "cpu": 64, "memory": 96}`, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(sv.Warnings) != 1 || !strings.Contains(sv.Warnings[0], "cpu: 64 cores asked") ||
		!strings.Contains(sv.Warnings[0], fmt.Sprintf("the engine has %d", caps.CPUs)) {
		t.Fatalf("warnings %q, want one saying cpu 64 is clamped", sv.Warnings)
	}
	f.waitImage(t, "big", service.ImageReady)
	if code, body := f.get(t, "/proxy/big/hello"); code != 200 {
		t.Fatalf("first request: %d %s", code, body)
	}
	s, _ := f.m.Get(ctx, "big")
	lim, err := f.eng.TaskLimits(ctx, runtime.TaskID(s.ContainerID))
	if err != nil || lim.NanoCPUs != int64(caps.CPUs)*1e9 {
		t.Fatalf("applied cpu %d, want the engine's %d cores: %v", lim.NanoCPUs, caps.CPUs, err)
	}
}

// TestStrictLimitsRefuseCPUAboveTheEngine: with strict limits the same service is refused at
// create, naming the field.
func TestStrictLimitsRefuseCPUAboveTheEngine(t *testing.T) {
	f := newFixture(t, func(c *service.Config) { c.StrictLimits = true })
	_, err := f.m.Create(context.Background(), "", "big", "", exampleContext(t, `{"cpu": 64}`, nil))
	var ve *spec.ValidationError
	if err == nil || !strings.Contains(err.Error(), "64 cores asked") || !errors.As(err, &ve) || ve.Problems[0].Field != "cpu" {
		t.Fatalf("cpu 64 under strict limits: %v", err)
	}
	if f.m.Exists(context.Background(), "big") {
		t.Fatal("a refused service was stored")
	}
}

// TestStorageWarningOnlyWhenAsked: a storage size the engine cannot apply is said once, at
// create, for a service that sets it; the default (the field absent) says nothing. Either
// way the service starts.
func TestStorageWarningOnlyWhenAsked(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	caps, err := f.eng.Capabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if caps.StorageQuota {
		t.Skip("the engine applies per-container quotas: nothing to warn about")
	}
	sv, err := f.m.Create(ctx, "", "dflt", "", exampleContext(t, `{"on_demand": true}`, nil))
	if err != nil || len(sv.Warnings) != 0 {
		t.Fatalf("default storage: warnings %q, %v", sv.Warnings, err)
	}
	sv, err = f.m.Create(ctx, "", "asked", "", exampleContext(t, `{"on_demand": true, "storage": 5}`, nil))
	if err != nil || len(sv.Warnings) != 1 || !strings.Contains(sv.Warnings[0], "storage: the 5 GB root filesystem limit cannot be applied") {
		t.Fatalf("storage 5: warnings %q, %v", sv.Warnings, err)
	}
	f.waitImage(t, "asked", service.ImageReady)
	if code, body := f.get(t, "/proxy/asked/"); code != 200 {
		t.Fatalf("first request to a service with storage 5: %d %s", code, body)
	}
}
