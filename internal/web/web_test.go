package web_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/web"
)

// TestPagesNeedSignIn: a signed-out browser loading a page is sent to the sign-in page with
// where it was going; the assets need no sign-in.
func TestPagesNeedSignIn(t *testing.T) {
	f := newFixture(t)
	for path, next := range map[string]string{"/": "/", "/ui/jobs?state=failed": "/ui/jobs?state=failed", "/ui/services": "/ui/services", "/ui/configs/cfg-x": "/ui/configs/cfg-x"} {
		resp, _ := f.page(t, "", path)
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/signin?next=") ||
			!strings.Contains(loc, strings.ReplaceAll(strings.ReplaceAll(next, "?", "%3F"), "=", "%3D")) {
			t.Errorf("%s signed out: %d to %q", path, resp.StatusCode, loc)
		}
	}
	// Not a browser: the API's 401, as before.
	if status, body := f.call(t, "", "GET", "/ui/jobs", "", nil); status != http.StatusUnauthorized || !strings.Contains(body, `"unauthorized"`) {
		t.Errorf("/ui/jobs without credentials, not a page load: %d %s", status, body)
	}
	for _, a := range []string{"/ui/static/berth.css", "/ui/static/berth.js"} {
		resp, body := f.page(t, "", a)
		if resp.StatusCode != http.StatusOK || len(body) < 100 || resp.Header.Get("Content-Security-Policy") != web.CSP {
			t.Errorf("%s: %d, %d bytes, CSP %q", a, resp.StatusCode, len(body), resp.Header.Get("Content-Security-Policy"))
		}
	}
	// Signed in, / is the jobs page.
	resp, _ := f.page(t, f.alpha, "/")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/jobs" {
		t.Errorf("/ signed in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

var (
	inlineScript = regexp.MustCompile(`<script(?:\s[^>]*)?>`)
	inlineStyle  = regexp.MustCompile(`(?i)<style|\sstyle=|\son[a-z]+=|javascript:`)
)

// strictPage checks a page's headers and that nothing in it needs the CSP loosened: every
// script is a file of berth's own, and there is no inline style or event handler.
func strictPage(t *testing.T, path string, resp *http.Response, body string) {
	t.Helper()
	if got := resp.Header.Get("Content-Security-Policy"); got != web.CSP {
		t.Errorf("%s: Content-Security-Policy %q", path, got)
	}
	if !strings.Contains(web.CSP, "default-src 'self'") || strings.Contains(web.CSP, "unsafe-inline") {
		t.Errorf("the policy is not strict: %s", web.CSP)
	}
	if resp.Header.Get("Content-Type") != "text/html; charset=utf-8" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("%s: headers %v", path, resp.Header)
	}
	for _, tag := range inlineScript.FindAllString(body, -1) {
		if !strings.Contains(tag, `src="/ui/static/`) {
			t.Errorf("%s: a script that is not a file of berth's: %s", path, tag)
		}
	}
	if m := inlineStyle.FindString(body); m != "" {
		t.Errorf("%s: inline style or handler %q", path, m)
	}
}

// TestJobsPages: the list and a job's page show what the API would show each token: a
// member its project's jobs, an admin every project's (or one project's), and another
// project's job does not exist. Filters work on the server, and the pages are strict.
func TestJobsPages(t *testing.T) {
	f := newFixture(t)
	a := f.submit(t, f.alpha, "alpha-report", "echo first line\necho result > /data/out/result.txt\necho the-last-line")
	b := f.submit(t, f.beta, "beta-secret", "echo beta")
	bad := f.submit(t, f.alpha, "alpha-broken", "echo oops >&2\nexit 3")
	for _, id := range []string{a.ID, b.ID, bad.ID} {
		f.wait(t, id)
	}

	resp, body := f.page(t, f.alpha, "/ui/jobs")
	strictPage(t, "/ui/jobs", resp, body)
	if resp.StatusCode != 200 || !strings.Contains(body, a.ID) || !strings.Contains(body, bad.ID) || strings.Contains(body, b.ID) {
		t.Fatalf("alpha's list: %d, has alpha's %v %v, beta's %v\n%s", resp.StatusCode, strings.Contains(body, a.ID),
			strings.Contains(body, bad.ID), strings.Contains(body, b.ID), body)
	}
	// The header says who is signed in; a status is a word beside its dot.
	for _, want := range []string{"ann", "project alpha", "member", `data-dot="ok"`, ">succeeded<", `data-dot="err"`, ">failed<", `href="/ui/services"`} {
		if !strings.Contains(body, want) {
			t.Errorf("alpha's list lacks %q", want)
		}
	}
	// Filters, on the server.
	for q, want := range map[string][]string{
		"?state=failed":                {bad.ID},
		"?state=succeeded":             {a.ID},
		"?q=REPORT":                    {a.ID},
		"?kind=component":              {},
		"?kind=block&q=broken":         {bad.ID},
		"?q=" + bad.ID[len(bad.ID)-8:]: {bad.ID}, // the random end: the start is the date
		"?q=%25":                       {},
	} {
		_, body := f.page(t, f.alpha, "/ui/jobs"+q)
		for _, id := range []string{a.ID, bad.ID, b.ID} {
			if has, wanted := strings.Contains(body, `data-key="`+id+`"`), contains(want, id); has != wanted {
				t.Errorf("%s: job %s shown %v, want %v", q, id, has, wanted)
			}
		}
	}
	if resp, body := f.page(t, f.alpha, "/ui/jobs?state=bogus"); resp.StatusCode != 200 || !strings.Contains(body, `There is no state &#34;bogus&#34;`) {
		t.Errorf("an unknown state: %d %s", resp.StatusCode, body)
	}
	// Another project: a member cannot ask for it; an admin sees all, or one.
	if resp, _ := f.page(t, f.alpha, "/ui/jobs?project=beta"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("alpha asking for beta's jobs: %d", resp.StatusCode)
	}
	_, body = f.page(t, f.admin, "/ui/jobs")
	if !strings.Contains(body, a.ID) || !strings.Contains(body, b.ID) || !strings.Contains(body, "every project") || !strings.Contains(body, `name="project"`) {
		t.Errorf("the admin's list should have every project's jobs and a project filter")
	}
	_, body = f.page(t, f.admin, "/ui/jobs?project=beta")
	if strings.Contains(body, a.ID) || !strings.Contains(body, b.ID) {
		t.Errorf("the admin's list of beta")
	}

	// A job's page: stages, image, the log's last line, outputs; another project's is 404.
	resp, body = f.page(t, f.alpha, "/ui/jobs/"+a.ID)
	strictPage(t, "/ui/jobs/"+a.ID, resp, body)
	for _, want := range []string{"the-last-line", "first line", "result.txt", "/api/v1/jobs/" + a.ID + "/outputs?path=result.txt",
		"Stages", "<meter", f.h.Img, "succeeded", "alpha-report"} {
		if !strings.Contains(body, want) {
			t.Errorf("the job page lacks %q", want)
		}
	}
	if strings.Contains(body, "data-follow") || strings.Contains(body, "data-live") || strings.Contains(body, "Cancel job") {
		t.Errorf("an ended job's page should neither follow, refresh nor offer to cancel")
	}
	if resp, _ := f.page(t, f.alpha, "/ui/jobs/"+b.ID); resp.StatusCode != http.StatusNotFound {
		t.Errorf("alpha opening beta's job: %d", resp.StatusCode)
	}
	if resp, _ := f.page(t, f.alpha, "/ui/jobs/nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("no such job: %d", resp.StatusCode)
	}
	if resp, body := f.page(t, f.alpha, "/ui/jobs/"+bad.ID); resp.StatusCode != 200 || !strings.Contains(body, "oops") || !strings.Contains(body, "app_error") {
		t.Errorf("the failed job's page: %d", resp.StatusCode)
	}
	if resp, _ := f.page(t, f.alpha, "/ui/nothing"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("no such page: %d", resp.StatusCode)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestJobsCancelButton: a running job's page follows its log and offers to cancel it to whom
// authz lets cancel it (its member), not to a read-only token of the same project.
func TestJobsCancelButton(t *testing.T) {
	f := newFixture(t)
	j := f.submit(t, f.alpha, "sleeper", "echo started\nsleep 60")
	t.Cleanup(func() { f.h.M.Cancel(t.Context(), j.ID) })
	_, body := f.page(t, f.alpha, "/ui/jobs/"+j.ID)
	if !strings.Contains(body, `data-post="/api/v1/jobs/`+j.ID+`/cancel"`) || !strings.Contains(body, `data-follow="/api/v1/jobs/`+j.ID+`/logs?follow=1`) ||
		!strings.Contains(body, `data-live="/ui/jobs/`+j.ID+`"`) {
		t.Errorf("a running job's page for its member should offer cancel, follow the log and refresh:\n%s", body)
	}
	_, body = f.page(t, f.alphaRead, "/ui/jobs/"+j.ID)
	if strings.Contains(body, "data-post=") {
		t.Errorf("a read-only token should get no cancel button")
	}
	if _, err := f.h.M.Cancel(t.Context(), j.ID); err != nil {
		t.Fatal(err)
	}
	if j := f.wait(t, j.ID); j.State != job.StateCancelled {
		t.Fatalf("cancelled: %s", j.State)
	}
}

// TestJobsPagination: pages of the list, newest first, with links both ways.
func TestJobsPagination(t *testing.T) {
	f := newFixture(t)
	var ids []string
	for i := range 3 {
		j := f.submit(t, f.alpha, "p"+string(rune('a'+i)), "true")
		f.wait(t, j.ID)
		ids = append(ids, j.ID)
	}
	ui := web.New(web.Deps{Jobs: f.h.M, PageSize: 2})
	srv := httptest.NewServer(f.auth.Middleware(ui))
	t.Cleanup(srv.Close)
	get := func(path string) string {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+f.alpha)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return b.String()
	}
	one := get("/ui/jobs")
	if !strings.Contains(one, ids[2]) || !strings.Contains(one, ids[1]) || strings.Contains(one, ids[0]) ||
		!strings.Contains(one, `href="/ui/jobs?page=2"`) || strings.Contains(one, `rel="prev"`) {
		t.Errorf("page 1 should have the two newest and a link to page 2:\n%s", one)
	}
	two := get("/ui/jobs?page=2")
	if !strings.Contains(two, ids[0]) || strings.Contains(two, ids[2]) || strings.Contains(two, `rel="next"`) || !strings.Contains(two, `href="/ui/jobs"`) {
		t.Errorf("page 2 should have the oldest and a link back:\n%s", two)
	}
	// Filters stay in the links.
	if p := get("/ui/jobs?q=p"); !strings.Contains(p, `href="/ui/jobs?page=2&amp;q=p"`) {
		t.Errorf("the next link should keep the filter")
	}
}

// TestServicesPage: cards of the caller's project's services only, with start or stop to
// whom may operate them and "open" through the proxy.
func TestServicesPage(t *testing.T) {
	f := newFixture(t)
	u := strings.ToLower(t.Name()[len(t.Name())-4:])
	alphaSvc, betaSvc := "web-a-"+u, "web-b-"+u
	f.createService(t, f.alpha, alphaSvc)
	f.createService(t, f.beta, betaSvc)
	resp, body := f.page(t, f.alpha, "/ui/services")
	strictPage(t, "/ui/services", resp, body)
	if !strings.Contains(body, `data-key="`+alphaSvc+`"`) || strings.Contains(body, betaSvc) {
		t.Fatalf("alpha's services page should show %s and not %s:\n%s", alphaSvc, betaSvc, body)
	}
	for _, want := range []string{`data-post="/api/v1/services/` + alphaSvc + `/start"`, `href="/proxy/` + alphaSvc + `/"`, ">stopped<", "State history", "READY"} {
		if !strings.Contains(body, want) {
			t.Errorf("alpha's card lacks %q", want)
		}
	}
	if _, body := f.page(t, f.alphaRead, "/ui/services"); strings.Contains(body, "data-post=") || !strings.Contains(body, alphaSvc) {
		t.Errorf("a read-only token sees the card without buttons")
	}
	if _, body := f.page(t, f.admin, "/ui/services"); !strings.Contains(body, alphaSvc) || !strings.Contains(body, betaSvc) {
		t.Errorf("the admin sees every project's services")
	}
	if _, body := f.page(t, f.admin, "/ui/services?project=beta"); strings.Contains(body, alphaSvc) || !strings.Contains(body, betaSvc) {
		t.Errorf("the admin's services of beta")
	}
	if resp, _ := f.page(t, f.alpha, "/ui/services?project=beta"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("alpha asking for beta's services: %d", resp.StatusCode)
	}
	// Started, its card turns green, says running and offers stop.
	if _, err := f.svcs.Ensure(t.Context(), alphaSvc); err != nil {
		t.Fatal(err)
	}
	_, body = f.page(t, f.alpha, "/ui/services")
	if !strings.Contains(body, `data-dot="ok"`) || !strings.Contains(body, ">running<") || !strings.Contains(body, "/"+alphaSvc+"/stop") {
		t.Errorf("a running service's card:\n%s", body)
	}
}
