package cli_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/berthproject/berth/internal/browsertest"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// headersService is a tiny service that answers every GET with the request headers it got and
// the BERTH_BASE_URL it was given, so a browser test can see what reached the app.
const headersDockerfile = `FROM berth/python:3.11
COPY server.py /app/server.py
EXPOSE 8080
CMD ["python3", "-u", "/app/server.py"]
`

const headersServer = `import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"path": self.path, "base_url": os.environ.get("BERTH_BASE_URL"),
                           "headers": [[k, v] for k, v in self.headers.items()]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
`

// TestBrowserServices drives Debian's Chromium through berth: it signs in at /signin, opens
// Jupyter Notebook in keep mode (every asset loads, a kernel starts and a cell's output comes
// back over the kernel's WebSocket), the Shiny app in strip mode (reached without the trailing
// slash, its slider moved and the server's output changing), and a service that shows the
// request headers it got: berth's session cookie and Authorization never reach it, the app's
// own cookie does.
//
// The two example images take minutes to build the first time: each is built once per run,
// and a copy kept under a tag of its content's hash (not a test label, so `berth sweep
// --tests` keeps it) leaves every step in the engine's layer cache for the next run.
func TestBrowserServices(t *testing.T) {
	eng := enginetest.Require(t)
	for _, base := range []string{"berth/python:3.11", "berth/r:4.2"} {
		if _, err := eng.InspectImage(context.Background(), base); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("the base %s is missing: `make test` bootstraps it", base)
			}
			t.Skipf("base %s not built", base)
		}
	}
	br := browsertest.New(t, 30*time.Minute)

	// Warm the layer cache of both examples side by side (the slow part of a first run).
	var wg sync.WaitGroup
	warmErr := make([]error, 2)
	for i, ex := range []struct{ dir, base string }{
		{"../../examples/service-jupyter", "berth/python:3.11"},
		{"../../examples/service-shiny", "berth/r:4.2"},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			warmErr[i] = warmLayerCache(eng, ex.dir, ex.base)
		}()
	}
	wg.Wait()
	for _, err := range warmErr {
		if err != nil {
			t.Fatal(err)
		}
	}

	dataDir := t.TempDir()
	instance := "test-" + enginetest.Unique(t)
	if err := os.WriteFile(filepath.Join(dataDir, "instance"), []byte(instance+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		eng.Sweep(context.Background(), map[string]string{runtime.LabelTest: "1", runtime.LabelInstance: instance})
	})
	u := enginetest.Unique(t)[:6]
	nb, shiny, hdrs := "nb-"+u, "shiny-"+u, "hdrs-"+u
	for _, name := range []string{nb, shiny, hdrs} {
		t.Cleanup(func() {
			eng.Sweep(context.Background(), map[string]string{runtime.LabelTest: "1", runtime.LabelService: name})
		})
	}
	hdrsDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(hdrsDir, "Dockerfile"), []byte(headersDockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hdrsDir, "server.py"), []byte(headersServer), 0o644); err != nil {
		t.Fatal(err)
	}

	addr := freePort(t)
	s := startServer(t, dataDir, addr)
	env := []string{"BERTH_SERVER=http://" + addr, "BERTH_TOKEN=" + s.token}
	creates := []struct {
		dir, name string
		r         runResult
		took      time.Duration
	}{{dir: "../../examples/service-jupyter", name: nb}, {dir: "../../examples/service-shiny", name: shiny}, {dir: hdrsDir, name: hdrs}}
	for i := range creates {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &creates[i]
			start := time.Now()
			c.r = berth(t, env, "service", "create", c.dir, "--name", c.name, "--wait")
			c.took = time.Since(start)
		}()
	}
	wg.Wait()
	for _, c := range creates {
		if c.r.code != 0 {
			t.Fatalf("create %s: %d %s %s", c.name, c.r.code, c.r.stdout, c.r.stderr)
		}
		t.Logf("service %s built and ready in %s", c.name, c.took.Round(time.Millisecond))
	}
	site := "http://" + addr

	// Each step has a time of its own: a page that never shows what a step waits for fails
	// that step, not the whole run.
	within := func(t *testing.T, tab context.Context, d time.Duration) context.Context {
		ctx, cancel := context.WithTimeout(tab, d)
		t.Cleanup(cancel)
		return ctx
	}
	if !t.Run("signin", func(t *testing.T) {
		signIn(t, within(t, br.Context(), time.Minute), site, "/proxy/"+hdrs+"/", s.token)
	}) {
		t.FailNow()
	}
	t.Run("jupyter-keep", func(t *testing.T) {
		jupyterRunsACell(t, within(t, br.NewTab(), 3*time.Minute), site, "/proxy/"+nb+"/")
	})
	t.Run("shiny-strip", func(t *testing.T) {
		shinySliderMoves(t, within(t, br.NewTab(), 2*time.Minute), site, "/proxy/"+shiny)
	})
	t.Run("app-never-sees-berth-credentials", func(t *testing.T) {
		appSeesNoBerthCredentials(t, within(t, br.NewTab(), time.Minute), site, "/proxy/"+hdrs+"/")
	})
}

// signIn opens a service path signed out: berth sends the browser to its sign-in page, the
// form takes the token, and the browser lands back where it was going, with berth's session
// cookie (HttpOnly, SameSite=Lax) that page scripts cannot read.
func signIn(t *testing.T, tab context.Context, site, path, token string) {
	rec := browsertest.Record(t, tab)
	if err := chromedp.Do(tab, chromedp.Navigate(site+path), chromedp.WaitVisible(`form input[name="token"]`)); err != nil {
		t.Fatalf("the sign-in form did not show: %v", err)
	}
	loc, err := chromedp.Run(tab, chromedp.Location())
	if err != nil || !strings.HasPrefix(loc, site+"/signin?") || !strings.Contains(loc, "next=") {
		t.Fatalf("signed out, %s should lead to /signin?next=…, got %q %v", path, loc, err)
	}
	// A wrong token first: the page comes back with a message, and no cookie is set.
	if err := chromedp.Do(tab, chromedp.SendKeys(`form input[name="token"]`, "not-a-token"), chromedp.Submit(`form input[name="token"]`),
		chromedp.WaitVisible(`form input[name="token"]`)); err != nil {
		t.Fatalf("sign in with a wrong token: %v", err)
	}
	if c := berthCookie(t, tab, site); c != nil {
		t.Fatalf("a wrong token set berth's cookie: %+v", c)
	}
	if err := chromedp.Do(tab, chromedp.Clear(`form input[name="token"]`), chromedp.SendKeys(`form input[name="token"]`, token),
		chromedp.Submit(`form input[name="token"]`)); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	loc, err = browsertest.Eventually(tab, fmt.Sprintf(`location.href === %q ? location.href : ""`, site+path), 30*time.Second)
	if err != nil {
		now, _ := chromedp.Run(tab, chromedp.Location())
		t.Fatalf("after signing in the browser should be at %s, is at %s: %v\n%s", site+path, now, err, strings.Join(entries(rec, site), "\n"))
	}
	c := berthCookie(t, tab, site)
	if c == nil {
		t.Fatal("signed in, but the browser holds no berth_session cookie")
	}
	if !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax || c.Path != "/" || c.Session {
		t.Errorf("berth_session should be HttpOnly, SameSite=Lax, Path=/, expiring: %+v", c)
	}
	if js, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.cookie`)); strings.Contains(js, "berth_session") {
		t.Errorf("page scripts can read berth's cookie: %q", js)
	}
}

// jupyterRunsACell opens Jupyter in keep mode: the tree page and all its assets load, a new
// notebook starts a kernel whose WebSocket goes through berth, and a cell computes a value
// the page shows.
func jupyterRunsACell(t *testing.T, tab context.Context, site, prefix string) {
	rec := browsertest.Record(t, tab)
	// A cold start: the service is on demand.
	if err := chromedp.Do(tab, chromedp.Navigate(site+prefix), chromedp.WaitVisible(`#notebook_list`)); err != nil {
		t.Fatalf("the notebook list did not show: %v\n%s", err, strings.Join(entries(rec, site), "\n"))
	}
	if loc, _ := chromedp.Run(tab, chromedp.Location()); strings.TrimSuffix(loc, "?") != site+prefix+"tree" {
		t.Errorf("Jupyter's redirect should stay under the prefix: at %q", loc)
	}
	// A notebook made as the "New" menu does, from the page (a same-origin POST with Jupyter's
	// own XSRF header and berth's cookie).
	nbPath, err := chromedp.Run(tab, chromedp.Evaluate[string](`(async () => {
  const m = document.cookie.match(/(?:^|; )_xsrf=([^;]*)/);
  const r = await fetch(document.body.dataset.baseUrl + "api/contents", {method: "POST",
    headers: {"Content-Type": "application/json", "X-XSRFToken": m ? decodeURIComponent(m[1]) : ""},
    body: JSON.stringify({type: "notebook"})});
  if (!r.ok) return "HTTP " + r.status + ": " + await r.text();
  return (await r.json()).path;
})()`, chromedp.EvalAwaitPromise))
	if err != nil || !strings.HasSuffix(nbPath, ".ipynb") {
		t.Fatalf("create a notebook: %q %v", nbPath, err)
	}
	if err := chromedp.Do(tab, chromedp.Navigate(site+prefix+"notebooks/"+nbPath)); err != nil {
		t.Fatal(err)
	}
	if _, err := browsertest.Eventually(tab, `(window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel && Jupyter.notebook.kernel.is_connected()) ? "yes" : ""`, 90*time.Second); err != nil {
		t.Fatalf("the kernel did not connect: %v\n%s", err, strings.Join(entries(rec, site), "\n"))
	}
	// Type the code into the first cell and run it with Shift+Enter, as a person would.
	if err := chromedp.Do(tab,
		chromedp.Click(`.cell .CodeMirror`),
		chromedp.SendKeys(`.cell .CodeMirror textarea`, "print(sum(range(1, 1001)) * 3)"),
		chromedp.KeyEvent(kb.Enter, chromedp.KeyModifiers(chromedp.ModifierShift)),
	); err != nil {
		t.Fatalf("type and run a cell: %v", err)
	}
	out, err := browsertest.Eventually(tab, `(document.querySelector(".output_subarea pre") || {}).textContent || ""`, 60*time.Second)
	if err != nil || strings.TrimSpace(out) != "1501500" {
		src, _ := chromedp.Run(tab, chromedp.Evaluate[string](`Jupyter.notebook.get_cell(0).get_text()`))
		t.Fatalf("the cell's output: %q %v (cell: %q)", out, err, src)
	}
	ws := rec.WebSockets()
	if len(ws) == 0 || !strings.Contains(strings.Join(ws, " "), strings.TrimPrefix(site, "http")+prefix+"api/kernels/") {
		t.Errorf("the kernel's WebSocket should go through berth under %s: %v", prefix, ws)
	}
	if p := rec.Problems(site); len(p) > 0 {
		t.Errorf("the notebook's requests that failed:\n%s", strings.Join(p, "\n"))
	}
}

var squareRe = regexp.MustCompile(`^(\d+) squared is (\d+)$`)

// shinySliderMoves opens the Shiny app in strip mode at its path without the trailing slash:
// berth redirects to the slash, every asset loads from inside the prefix, and moving the
// slider changes the server's output (sent over Shiny's WebSocket through berth).
func shinySliderMoves(t *testing.T, tab context.Context, site, path string) {
	rec := browsertest.Record(t, tab)
	if err := chromedp.Do(tab, chromedp.Navigate(site+path), chromedp.WaitVisible(`.irs-handle`)); err != nil {
		t.Fatalf("the slider did not show: %v\n%s", err, strings.Join(entries(rec, site), "\n"))
	}
	if loc, _ := chromedp.Run(tab, chromedp.Location()); loc != site+path+"/" {
		t.Errorf("%s should redirect to %s/, the browser is at %q", path, path, loc)
	}
	first, err := browsertest.Eventually(tab, `document.getElementById("square").textContent`, 60*time.Second)
	if err != nil || first != "10 squared is 100" {
		t.Fatalf("the first output: %q %v", first, err)
	}
	// Move the slider with the keyboard, as a person would: focus it, press → a few times.
	if err := chromedp.Do(tab, chromedp.Click(`.irs-handle`), chromedp.KeyEvent(kb.ArrowRight+kb.ArrowRight+kb.ArrowRight)); err != nil {
		t.Fatalf("move the slider: %v", err)
	}
	got, err := browsertest.Eventually(tab, `(t => t !== "10 squared is 100" ? t : "")(document.getElementById("square").textContent)`, 30*time.Second)
	if err != nil {
		v, _ := chromedp.Run(tab, chromedp.Value(`#n`))
		t.Fatalf("the output did not change after the slider moved (slider %q): %v", v, err)
	}
	m := squareRe.FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("the output %q is not the app's", got)
	}
	n, _ := strconv.Atoi(m[1])
	sq, _ := strconv.Atoi(m[2])
	if n <= 10 || sq != n*n {
		t.Fatalf("after moving the slider right: %q", got)
	}
	ws := rec.WebSockets()
	if len(ws) == 0 || !strings.Contains(strings.Join(ws, " "), strings.TrimPrefix(site, "http")+path+"/") {
		t.Errorf("Shiny's WebSocket should go through berth under %s/: %v", path, ws)
	}
	if p := rec.Problems(site); len(p) > 0 {
		t.Errorf("the app's requests that failed:\n%s", strings.Join(p, "\n"))
	}
}

// appSeesNoBerthCredentials opens the headers service with berth's cookie and a cookie of the
// app's own: the app gets its cookie, the browser's Host and the forwarding headers, and
// neither berth's cookie nor an Authorization header.
func appSeesNoBerthCredentials(t *testing.T, tab context.Context, site, prefix string) {
	var seen struct {
		Path    string      `json:"path"`
		BaseURL string      `json:"base_url"`
		Headers [][2]string `json:"headers"`
	}
	read := func() {
		t.Helper()
		body, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.body.innerText`))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(body), &seen); err != nil {
			t.Fatalf("the headers service answered %q: %v", body, err)
		}
	}
	if err := chromedp.Do(tab, chromedp.Navigate(site+prefix+"first"), chromedp.WaitReady(`body`)); err != nil {
		t.Fatal(err)
	}
	read()
	// The app's own cookie, set by a page script as an app would, scoped to the app's prefix.
	if _, err := chromedp.Run(tab, chromedp.Evaluate[string](fmt.Sprintf(`document.cookie = "app=kept; path=%s"`, prefix))); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(tab, chromedp.Navigate(site+prefix+"second"), chromedp.WaitReady(`body`)); err != nil {
		t.Fatal(err)
	}
	read()
	h := map[string]string{}
	for _, kv := range seen.Headers {
		h[strings.ToLower(kv[0])] = kv[1]
	}
	if strings.Contains(h["cookie"], "berth_session") {
		t.Errorf("the app got berth's cookie: Cookie: %s", h["cookie"])
	}
	if !strings.Contains(h["cookie"], "app=kept") {
		t.Errorf("the app's own cookie should reach it: Cookie: %q", h["cookie"])
	}
	if v, ok := h["authorization"]; ok {
		t.Errorf("the app got an Authorization header: %q", v)
	}
	if host := strings.TrimPrefix(site, "http://"); h["host"] != host || h["x-forwarded-host"] != host {
		t.Errorf("the app should see the browser's Host %s: Host %q, X-Forwarded-Host %q", host, h["host"], h["x-forwarded-host"])
	}
	if want := strings.TrimSuffix(prefix, "/"); h["x-forwarded-prefix"] != want || h["x-forwarded-proto"] != "http" {
		t.Errorf("forwarding headers: X-Forwarded-Prefix %q (want %q), X-Forwarded-Proto %q", h["x-forwarded-prefix"], want, h["x-forwarded-proto"])
	}
	if seen.Path != "/second" || seen.BaseURL != prefix {
		t.Errorf("strip mode: the app should get /second and BERTH_BASE_URL=%s, got %q and %q", prefix, seen.Path, seen.BaseURL)
	}
}

// berthCookie returns the browser's berth_session cookie for the site, or nil.
func berthCookie(t *testing.T, tab context.Context, site string) *network.Cookie {
	t.Helper()
	res, err := chromedp.Call(tab, network.GetCookies, network.GetCookiesParams{URLs: []string{site + "/"}})
	if err != nil {
		t.Fatalf("read the browser's cookies: %v", err)
	}
	for _, c := range res.Cookies {
		if c.Name == "berth_session" {
			return c
		}
	}
	return nil
}

func entries(rec *browsertest.Recorder, prefix string) []string {
	var out []string
	for _, e := range rec.Entries(prefix) {
		out = append(out, e.String())
	}
	return out
}

// warmLayerCache builds the folder once under berth/test-cache-<folder>:<hash>, the hash of
// its files and of the base image's id. The copy carries no test label, so `berth sweep
// --tests` keeps it and with it every step's layer: berth's own build of the same folder then
// finds them all in the engine's layer cache. An older copy of the same folder is removed.
func warmLayerCache(eng *docker.Engine, dir, base string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	baseImg, err := eng.InspectImage(ctx, base)
	if err != nil {
		return fmt.Errorf("warm the layer cache of %s: %w", dir, err)
	}
	h := sha256.New()
	h.Write([]byte(baseImg.ID))
	var files []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files = append(files, p)
		return nil
	})
	if err != nil {
		return fmt.Errorf("warm the layer cache of %s: %w", dir, err)
	}
	sort.Strings(files)
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("warm the layer cache of %s: %w", dir, err)
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(b))
		h.Write(b)
	}
	sum := hex.EncodeToString(h.Sum(nil))[:12]
	repo := "berth/test-cache-" + filepath.Base(dir)
	ref := repo + ":" + sum
	if _, err := eng.InspectImage(ctx, ref); err == nil {
		return nil
	}
	var log bytes.Buffer
	start := time.Now()
	if _, err := eng.BuildImage(ctx, runtime.BuildSpec{
		ContextDir: dir, Tags: []string{ref}, Network: "bridge",
		Labels: map[string]string{runtime.LabelKind: runtime.KindBase, runtime.LabelRecipe: sum},
	}, io.Writer(&log)); err != nil {
		return fmt.Errorf("warm the layer cache of %s: %w\n%s", dir, err, lastLinesOf(log.String(), 30))
	}
	fmt.Fprintf(os.Stderr, "built %s in %s\n", ref, time.Since(start).Round(time.Second))
	if imgs, err := eng.ListImages(ctx, map[string]string{runtime.LabelManaged: "true", runtime.LabelKind: runtime.KindBase}); err == nil {
		for _, im := range imgs {
			for _, tag := range im.Tags {
				if strings.HasPrefix(tag, repo+":") && tag != ref {
					eng.RemoveImage(ctx, tag)
				}
			}
		}
	}
	return nil
}

func lastLinesOf(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
