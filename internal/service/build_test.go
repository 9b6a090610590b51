package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/service"
)

// TestUnpullableBaseImageIsNamed: a base image the engine has not and cannot pull is named in
// the service's error, which says "image build failed" at most once.
func TestUnpullableBaseImageIsNamed(t *testing.T) {
	f, img := newBusyboxFixture(t, nil)
	df := "FROM " + img + " AS build\nRUN true\nFROM some-unpullable-image:1\nCOPY --from=build /bin/true /true\nEXPOSE 8080\n"
	if _, err := f.m.Create(context.Background(), "", "unpullable", "", busyboxContext(df, `{"on_demand": true}`)); err != nil {
		t.Fatal(err)
	}
	var sv service.Service
	for i := 0; i < 3600; i++ {
		s, err := f.m.Get(context.Background(), "unpullable")
		if err != nil {
			t.Fatal(err)
		}
		if s.ImageState == service.ImageError || s.ImageState == service.ImageReady {
			sv = s
			break
		}
		waitTick()
	}
	if sv.ImageState != service.ImageError {
		t.Fatalf("image state %s (%s), want ERROR", sv.ImageState, sv.ImageReason)
	}
	r := sv.ImageReason
	if !strings.Contains(r, "base image some-unpullable-image:1 is not on this engine and cannot be pulled") ||
		!strings.Contains(r, "berth base") || strings.Contains(r, img) {
		t.Errorf("reason %q: want it to name some-unpullable-image:1 only", r)
	}
	if strings.Count(r, "image build failed") > 0 {
		t.Errorf("reason %q repeats the prefix the caller adds", r)
	}
	t.Logf("reason: %s", r)
}

func waitTick() { time.Sleep(50 * time.Millisecond) }
