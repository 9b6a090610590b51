package image

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/runtime"
)

// slowBuilder is a fake engine whose builds wait for release.
type slowBuilder struct {
	runtime.Runtime // methods not overridden panic: Ensure must not call them
	mu              sync.Mutex
	images          map[string]runtime.Image
	builds          int
	started         chan struct{}
	release         chan struct{}
}

func (f *slowBuilder) Name() string { return "fake" }

func (f *slowBuilder) InspectImage(_ context.Context, ref string) (runtime.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if img, ok := f.images[ref]; ok {
		return img, nil
	}
	return runtime.Image{}, runtime.ErrNotFound
}

func (f *slowBuilder) BuildImage(ctx context.Context, b runtime.BuildSpec, progress io.Writer) (runtime.Image, error) {
	f.mu.Lock()
	f.builds++
	f.mu.Unlock()
	close(f.started)
	select {
	case <-f.release:
	case <-ctx.Done():
		return runtime.Image{}, ctx.Err()
	}
	io.WriteString(progress, "late output\n")
	img := runtime.Image{ID: "sha256:gen", Tags: b.Tags}
	f.mu.Lock()
	f.images[b.Tags[0]] = img
	f.mu.Unlock()
	return img, nil
}

func (f *slowBuilder) ImportImage(context.Context, io.Reader, string, []string, map[string]string) (runtime.Image, error) {
	return runtime.Image{}, errors.New("not in this fake")
}

// TestEnsureFirstCallerLeavingDoesNotFailWaiters: the caller whose call started the build
// gives up; another caller waiting on the same hash still gets the image, from one build,
// and the first caller's writer gets nothing after it left.
func TestEnsureFirstCallerLeavingDoesNotFailWaiters(t *testing.T) {
	f := &slowBuilder{images: map[string]runtime.Image{"berth/python:3.11": {ID: "sha256:base"}},
		started: make(chan struct{}), release: make(chan struct{})}
	cfg := DefaultConfig()
	cfg.LogDir = t.TempDir()
	m := NewManager(f, cfg, nil)
	req := Request{Language: "python", Dependencies: []string{"x==1"}}

	firstCtx, cancelFirst := context.WithCancel(context.Background())
	var firstOut lockedBuilder
	firstErr := make(chan error, 1)
	go func() {
		_, err := m.Ensure(firstCtx, req, &firstOut)
		firstErr <- err
	}()
	<-f.started
	second := make(chan Result, 1)
	go func() {
		res, err := m.Ensure(context.Background(), req, io.Discard)
		if err != nil {
			t.Error(err)
		}
		second <- res
	}()
	time.Sleep(50 * time.Millisecond) // let the second caller join the build
	cancelFirst()
	if err := <-firstErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller: %v, want context.Canceled", err)
	}
	close(f.release)
	res := <-second
	if res.ImageID != "sha256:gen" || res.CacheHit || f.builds != 1 || m.Stats().Builds != 1 {
		t.Fatalf("second caller got %+v after %d builds (stats %+v)", res, f.builds, m.Stats())
	}
	if strings.Contains(firstOut.String(), "late output") {
		t.Fatal("output reached a caller that had left")
	}
}

type lockedBuilder struct {
	mu sync.Mutex
	sb strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sb.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sb.String()
}

func TestUnescapeMountPath(t *testing.T) {
	for in, want := range map[string]string{`/a/b`: "/a/b", `/a\040b`: "/a b", `/x\134y`: `/x\y`, `/end\04`: `/end\04`} {
		if got := unescapeMountPath(in); got != want {
			t.Errorf("%q → %q, want %q", in, got, want)
		}
	}
}
