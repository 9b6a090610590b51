package service_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/service"
	"github.com/berthproject/berth/internal/spec"
)

// prefixApp is a small web app as real ones behave behind a prefix: / redirects to login with
// an absolute path and sets a session cookie for its root; login shows what it was asked. In
// keep mode it builds both from BERTH_BASE_URL (as an app's base-URL setting does); in strip
// mode it knows nothing of the prefix.
const prefixApp = `import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

BASE = os.environ.get("BERTH_BASE_URL", "")

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        path = urlsplit(self.path).path
        root = BASE if BASE and path.startswith(BASE) else "/"
        if path == root:
            self.send_response(302)
            self.send_header("Location", root + "login")
            self.send_header("Set-Cookie", "sid=42; Path=" + root + "; HttpOnly; SameSite=Lax")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        b = json.dumps({"path": self.path, "base": BASE, "host": self.headers.get("Host"),
                        "prefix": self.headers.get("X-Forwarded-Prefix"),
                        "cookie": self.headers.get("Cookie")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

ThreadingHTTPServer(("0.0.0.0", 8080), H).serve_forever()
`

func prefixDockerfile(label string) string {
	df := "FROM berth/python:3.11\nCOPY server.py /app/server.py\nEXPOSE 8080\n"
	if label != "" {
		df += "LABEL berth.proxy.prefix=" + label + "\n"
	}
	return df + `CMD ["python3", "-u", "/app/server.py"]` + "\n"
}

// browse follows redirects with a cookie jar, as a browser does, and returns where it ended,
// what the app said there and the jar.
func browse(t *testing.T, proxyURL, path string) (*url.URL, map[string]string, http.CookieJar) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	resp, err := client.Get(proxyURL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var info map[string]string
	if resp.StatusCode != 200 || json.Unmarshal(b, &info) != nil {
		t.Fatalf("GET %s ended at %s: %d %s", path, resp.Request.URL, resp.StatusCode, b)
	}
	return resp.Request.URL, info, jar
}

// TestPrefixModes: a keep-mode app gets /proxy/<name>/… and BERTH_BASE_URL; a strip-mode app
// that knows nothing of the prefix redirects to /login and sets a cookie for /, and the browser
// ends at /proxy/<name>/login with the cookie scoped to the service. Both see the client's Host.
// /proxy/<name> without a slash is redirected first, its query kept.
func TestPrefixModes(t *testing.T) {
	f := newFixture(t, nil)
	for _, c := range []struct{ name, label string }{{"kept", "keep"}, {"stripped", ""}} {
		ctx := exampleContext(t, `{"on_demand": true, "storage": 0}`, map[string]string{"Dockerfile": prefixDockerfile(c.label), "server.py": prefixApp})
		if _, err := f.m.Create(context.Background(), "", c.name, "", ctx); err != nil {
			t.Fatal(err)
		}
		f.waitImage(t, c.name, service.ImageReady)
	}
	host := strings.TrimPrefix(f.proxy.URL, "http://")

	end, info, _ := browse(t, f.proxy.URL, "/proxy/kept?x=1")
	if end.Path != "/proxy/kept/login" || info["path"] != "/proxy/kept/login" || info["base"] != "/proxy/kept/" ||
		info["host"] != host || info["prefix"] != "/proxy/kept" || info["cookie"] != "sid=42" {
		t.Errorf("keep: ended at %s, the app saw %v", end, info)
	}
	if f.m.Mode("kept") != spec.PrefixKeep {
		t.Errorf("keep: mode %q", f.m.Mode("kept"))
	}

	end, info, jar := browse(t, f.proxy.URL, "/proxy/stripped?x=1")
	if end.Path != "/proxy/stripped/login" || info["path"] != "/login" || info["base"] != "/proxy/stripped/" ||
		info["host"] != host || info["prefix"] != "/proxy/stripped" || info["cookie"] != "sid=42" {
		t.Errorf("strip: ended at %s, the app saw %v", end, info)
	}
	u, _ := url.Parse(f.proxy.URL + "/proxy/kept/")
	if cs := jar.Cookies(u); len(cs) != 0 {
		t.Errorf("strip: the app's cookie for / reaches another service: %v", cs)
	}
	u, _ = url.Parse(f.proxy.URL + "/proxy/stripped/x")
	if cs := jar.Cookies(u); len(cs) != 1 || cs[0].Value != "42" {
		t.Errorf("strip: cookies for the service %v", cs)
	}

	// A restarted berth re-adopts the running keep-mode container with its mode.
	f.m.Close()
	f.start(t)
	end, info, _ = browse(t, f.proxy.URL, "/proxy/kept/")
	if end.Path != "/proxy/kept/login" || info["path"] != "/proxy/kept/login" {
		t.Errorf("keep after a restart: ended at %s, the app saw %v", end, info)
	}
	if s, _ := f.m.Get(context.Background(), "kept"); starts(s) != 1 {
		t.Errorf("keep after a restart: %d starts, want the running container re-adopted", starts(s))
	}
}

// TestPrefixLabelRefused: a value other than strip and keep is refused when the service is
// created (its Dockerfile), and when it is built (a base image's label the Dockerfile does
// not show), naming the label and the allowed values.
func TestPrefixLabelRefused(t *testing.T) {
	f, img := newBusyboxFixture(t, nil)
	_, err := f.m.Create(context.Background(), "", "bad", "", busyboxContext(webService(img, "x")+"LABEL berth.proxy.prefix=rewrite\n", `{"on_demand": true}`))
	var ve *spec.ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), `LABEL berth.proxy.prefix: "rewrite": allowed: strip (the default), keep`) {
		t.Fatalf("create: %v", err)
	}
	if f.m.Exists(context.Background(), "bad") {
		t.Fatal("a refused service was stored")
	}

	// A base image carrying a bad value: only the build can see it.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	df := "FROM " + img + "\nLABEL berth.proxy.prefix=Keep\n"
	tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(df)), Typeflag: tar.TypeReg})
	tw.Write([]byte(df))
	tw.Close()
	base := "berth/test-prefix-base:" + strings.TrimPrefix(f.cfg.Instance, "test-")
	if _, err := f.eng.BuildImage(context.Background(), runtime.BuildSpec{Context: &buf, Tags: []string{base}, Labels: f.cfg.ExtraLabels}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Create(context.Background(), "", "badbase", "", busyboxContext(webService(base, "x"), `{"on_demand": true}`)); err != nil {
		t.Fatal(err)
	}
	var s service.Service
	for i := 0; i < 3600; i++ {
		if s, err = f.m.Get(context.Background(), "badbase"); err != nil {
			t.Fatal(err)
		}
		if s.ImageState == service.ImageError || s.ImageState == service.ImageReady {
			break
		}
		waitTick()
	}
	if s.ImageState != service.ImageError || s.ImageReason != `label berth.proxy.prefix="Keep": allowed: strip (the default), keep` {
		t.Fatalf("build: %s %q", s.ImageState, s.ImageReason)
	}
}
