// Package browsertest is the one helper browser tests go through: it finds Chromium (Debian's
// package, installed by `make test`'s prerequisites), starts it headless with a profile of the
// test's own, and records what the page loaded. Without Chromium the test is skipped, except
// under CI=true, where it fails.
package browsertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// EnvChromium names a Chromium binary to use instead of the one found on PATH.
const EnvChromium = "BERTH_CHROMIUM"

// names are the binaries looked for on PATH, Debian's first.
var names = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// Find returns the path of the Chromium binary: $BERTH_CHROMIUM when set, otherwise the first
// of chromium, chromium-browser, google-chrome, google-chrome-stable on PATH.
func Find() (string, error) {
	if p := os.Getenv(EnvChromium); p != "" {
		found, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvChromium, p, err)
		}
		return found, nil
	}
	for _, n := range names {
		if found, err := exec.LookPath(n); err == nil {
			return found, nil
		}
	}
	return "", fmt.Errorf("no Chromium on PATH (looked for %s; `make prereqs` installs Debian's chromium, or set %s)",
		strings.Join(names, ", "), EnvChromium)
}

// Browser is one headless Chromium for a test. Its tabs share its cookies.
type Browser struct {
	t      testing.TB
	ctx    context.Context // the browser's first tab
	output *syncBuffer
}

// New starts a headless Chromium for the test with a fresh profile in a temporary folder, and
// closes it when the test ends. The sandbox is turned off only when the test runs as root
// (Chromium refuses to start as root with it). Every browser action made through the returned
// Browser's contexts ends after timeout at the latest.
func New(t testing.TB, timeout time.Duration) *Browser {
	t.Helper()
	path, err := Find()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("this test needs Chromium and CI=true forbids skipping: %v", err)
		}
		t.Skipf("no browser: %v", err)
	}
	profile := t.TempDir() // removed after the browser below has ended (cleanups run LIFO)
	out := &syncBuffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(out),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	ctx, cancelTimeout := context.WithTimeout(context.Background(), timeout)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	b := &Browser{t: t, ctx: bctx, output: out}
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		cancelTimeout()
		if t.Failed() && out.Len() > 0 {
			t.Logf("chromium output:\n%s", lastLines(out.String(), 40))
		}
	})
	// Start it now, so a browser that cannot start fails here and not in the first action.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v\n%s", path, err, lastLines(out.String(), 40))
	}
	return b
}

// Context is the browser's first tab.
func (b *Browser) Context() context.Context { return b.ctx }

// NewTab opens another tab in the same browser (same cookies); it is closed when the test ends.
func (b *Browser) NewTab() context.Context {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("open a tab: %v", err)
	}
	return ctx
}

// Entry is one request the page made, as the browser saw it.
type Entry struct {
	URL    string
	Type   string // Document, Script, Stylesheet, XHR, Fetch, WebSocket, …
	Status int    // 0 when no response came
	Failed string // the browser's error text when the load failed
}

func (e Entry) String() string {
	s := fmt.Sprintf("%s %s: %d", e.Type, e.URL, e.Status)
	if e.Failed != "" {
		s += " failed: " + e.Failed
	}
	return s
}

// Recorder keeps every request a tab made, its response status or its failure, the
// WebSockets it opened and the script errors it threw.
type Recorder struct {
	mu         sync.Mutex
	byID       map[network.RequestID]*Entry
	order      []network.RequestID
	sockets    []string
	exceptions []string
}

// Record starts recording the tab's network and script errors. Call it before navigating.
func Record(t testing.TB, tab context.Context) *Recorder {
	t.Helper()
	r := &Recorder{byID: map[network.RequestID]*Entry{}}
	err := chromedp.Listen(tab, func(ev any) {
		r.mu.Lock()
		defer r.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			// A redirect reuses the request id: the redirect's response closes the earlier hop.
			if prev, ok := r.byID[ev.RequestID]; ok && ev.RedirectResponse != nil {
				prev.Status = int(ev.RedirectResponse.Status)
				id := network.RequestID(fmt.Sprintf("%s#%d", ev.RequestID, len(r.order)))
				r.byID[id] = prev
				r.order[indexOf(r.order, ev.RequestID)] = id
			}
			r.byID[ev.RequestID] = &Entry{URL: ev.Request.URL, Type: string(ev.Type)}
			r.order = append(r.order, ev.RequestID)
		case *network.EventResponseReceived:
			if e, ok := r.byID[ev.RequestID]; ok {
				e.Status = int(ev.Response.Status)
				if e.Type == "" {
					e.Type = string(ev.Type)
				}
			}
		case *network.EventLoadingFailed:
			if e, ok := r.byID[ev.RequestID]; ok {
				e.Failed = ev.ErrorText
				if ev.Canceled {
					e.Failed += " (canceled)"
				}
			}
		case *network.EventWebSocketCreated:
			r.sockets = append(r.sockets, ev.URL)
		case *cdpruntime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg += " " + d.Exception.Description
			}
			r.exceptions = append(r.exceptions, fmt.Sprintf("%s (%s:%d)", msg, d.URL, d.LineNumber))
		}
	})
	if err != nil {
		t.Fatalf("record the tab: %v", err)
	}
	return r
}

func indexOf(ids []network.RequestID, id network.RequestID) int {
	for i := len(ids) - 1; i >= 0; i-- {
		if ids[i] == id {
			return i
		}
	}
	return -1
}

// Entries returns every request so far whose URL starts with prefix ("" for all).
func (r *Recorder) Entries(prefix string) []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Entry
	for _, id := range r.order {
		if e := r.byID[id]; strings.HasPrefix(e.URL, prefix) {
			out = append(out, *e)
		}
	}
	return out
}

// Problems returns the requests under prefix that answered 4xx or 5xx, or failed to load for
// another reason than the page cancelling them, and every script error thrown. The browser's
// own favicon probe is not the page's and is left out.
func (r *Recorder) Problems(prefix string) []string {
	var out []string
	for _, e := range r.Entries(prefix) {
		switch {
		case e.Type == "Other" && strings.HasSuffix(e.URL, "/favicon.ico"):
		case e.Status >= 400:
			out = append(out, e.String())
		case e.Failed != "" && !strings.Contains(e.Failed, "ERR_ABORTED") && !strings.Contains(e.Failed, "(canceled)"):
			out = append(out, e.String())
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range r.exceptions {
		out = append(out, "script error: "+x)
	}
	return out
}

// WebSockets returns the URLs of the WebSockets the tab opened.
func (r *Recorder) WebSockets() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.sockets...)
}

// ErrTimeout is returned by Eventually when the condition never held.
var ErrTimeout = errors.New("browsertest: condition not met in time")

// Eventually evaluates the JavaScript expression in the tab every 100 ms until it returns a
// non-empty string, and returns that string.
func Eventually(ctx context.Context, expr string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err == nil && s != "" {
			return s, nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if last != nil {
				return "", fmt.Errorf("%w: %s: %v", ErrTimeout, expr, last)
			}
			return "", fmt.Errorf("%w: %s", ErrTimeout, expr)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
