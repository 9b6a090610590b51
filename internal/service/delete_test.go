package service_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/service"
)

// TestDeleteService: a service with a request in flight is not deleted without force; once
// idle, deleting it removes its container, network, image, stored folder and record, and the
// proxy no longer knows it.
func TestDeleteService(t *testing.T) {
	f, img := newBusyboxFixture(t, nil)
	ctx := context.Background()
	f.createBusybox(t, "gone", webService(img, "alive"), `{"on_demand": true, "storage": 0}`)
	if code, _ := f.get(t, "/proxy/gone/"); code != 200 {
		t.Fatal("first request failed")
	}
	own := map[string]string{"berth.managed": "true", "berth.instance": f.cfg.Instance, "berth.service": "gone"}
	count := func() (int, int, int) {
		t.Helper()
		ts, err1 := f.eng.List(ctx, own)
		ims, err2 := f.eng.ListImages(ctx, own)
		ns, err3 := f.eng.ListNetworks(ctx, own)
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatal(err)
		}
		return len(ts), len(ims), len(ns)
	}
	if c, i, n := count(); c != 1 || i != 1 || n != 1 {
		t.Fatalf("before: %d containers, %d images, %d networks", c, i, n)
	}
	done := f.m.Track("gone")
	if _, err := f.m.Delete(ctx, "gone", false); !errors.Is(err, service.ErrInUse) {
		t.Fatalf("delete with a request in flight: %v", err)
	}
	done()
	removed, err := f.m.Delete(ctx, "gone", false)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(removed, ", ")
	for _, want := range []string{"container ", "network " + f.cfg.ServiceNetwork("gone"), "image berth/svc-gone:", "build context", "record"} {
		if !strings.Contains(got, want) {
			t.Errorf("removed %q: no %q", got, want)
		}
	}
	if c, i, n := count(); c != 0 || i != 0 || n != 0 {
		t.Fatalf("after: %d containers, %d images, %d networks left", c, i, n)
	}
	if f.m.Exists(ctx, "gone") {
		t.Fatal("the proxy still knows the service")
	}
	if _, err := f.m.Get(ctx, "gone"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("record left: %v", err)
	}
	if _, err := os.Stat(f.m.ContextPath("gone")); !os.IsNotExist(err) {
		t.Fatalf("build context left: %v", err)
	}
	if code, _ := f.get(t, "/proxy/gone/"); code != 404 {
		t.Fatalf("a request after the delete: %d", code)
	}
	if _, err := f.m.Delete(ctx, "gone", false); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}
