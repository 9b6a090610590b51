package cli_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestOpenSignsABrowserIn: berth open prints a one-time link; a client with a cookie jar (a
// browser, as far as berth can tell) follows it, is signed in and gets the service's answer,
// without berth's token reaching the service; the link does not work twice; berth token
// revoke ends the session.
func TestOpenSignsABrowserIn(t *testing.T) {
	_, dataDir, name, _ := serviceSetup(t, "open")
	addr := freePort(t)
	s := startServer(t, dataDir, addr)
	env := []string{"BERTH_SERVER=http://" + addr, "BERTH_TOKEN=" + s.token}
	if r := berth(t, env, "service", "create", "../../examples/service-echo", "--name", name, "--wait"); r.code != 0 {
		t.Fatalf("create: %d %s %s", r.code, r.stdout, r.stderr)
	} else if !strings.Contains(r.stderr, "Step 1/") || !strings.Contains(r.stderr, "FROM ") {
		// create --wait follows the build's own output, not only the image's states.
		t.Fatalf("create --wait did not show the build:\n%s", r.stderr)
	}
	if r := berth(t, env, "open", "no-such-service"); r.code == 0 || !strings.Contains(r.stderr, "no-such-service") {
		t.Fatalf("open of a missing service: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// The user's own token, so that revoking it leaves the admin token for the CLI.
	out, err := exec.Command(berthBinary(t), "--data-dir", dataDir, "token", "create", "--name", "ann").Output()
	if err != nil {
		t.Fatal(err)
	}
	ann := strings.TrimSpace(string(out))
	r := berth(t, []string{"BERTH_SERVER=http://" + addr, "BERTH_TOKEN=" + ann}, "open", name)
	link := strings.TrimSpace(r.stdout)
	if r.code != 0 || !strings.HasPrefix(link, "http://"+addr+"/signin/link?code=") {
		t.Fatalf("open: %d %q %s", r.code, r.stdout, r.stderr)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	get := func(u string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Accept", "text/html,*/*")
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get(link)
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/proxy/"+name+"/" ||
		!strings.Contains(body, `"path": "/"`) || !strings.Contains(body, `"authorization": null`) {
		t.Fatalf("following the link: %d at %s: %s", resp.StatusCode, resp.Request.URL, body)
	}
	u, _ := url.Parse("http://" + addr + "/")
	if cs := jar.Cookies(u); len(cs) != 1 || cs[0].Name != "berth_session" {
		t.Fatalf("cookies kept: %v", cs)
	}
	// The session keeps working; the link does not work twice.
	if resp, body := get("http://" + addr + "/proxy/" + name + "/again"); resp.StatusCode != 200 || !strings.Contains(body, `"path": "/again"`) {
		t.Fatalf("a second request with the session: %d %s", resp.StatusCode, body)
	}
	fresh := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if resp, err := fresh.Get(link); err != nil || resp.StatusCode != 401 {
		t.Fatalf("the link a second time: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// Revoking the token (another process) ends the session once the server's memory of it
	// ages out (10 s); the browser is then sent to sign in.
	if out, err := exec.Command(berthBinary(t), "--data-dir", dataDir, "token", "revoke", "ann").CombinedOutput(); err != nil {
		t.Fatalf("revoke: %v %s", err, out)
	}
	browser.CheckRedirect = fresh.CheckRedirect
	var last *http.Response
	for i := 0; i < 60; i++ {
		last, _ = get("http://" + addr + "/proxy/" + name + "/")
		if last.StatusCode == 303 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if last.StatusCode != 303 || last.Header.Get("Location") != "/signin?next=/proxy/"+name+"/" {
		t.Fatalf("after revoke: %d %v", last.StatusCode, last.Header)
	}
}
