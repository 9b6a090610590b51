package web_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/berthproject/berth/internal/browsertest"
)

// EnvScreenshots, set to 1, makes the browser test write its screenshots into docs/screenshots
// (normal runs leave the docs alone).
const EnvScreenshots = "BERTH_SCREENSHOTS"

// TestBrowserDashboard drives Chromium through the dashboard: it signs in on /signin with a
// token, sees the jobs page, watches a job submitted through the API appear and turn
// succeeded without a reload, opens its page and reads its last log line, and stops and
// starts a service from its card, seeing the dot change each time, and runs a component's
// configuration from its page, seeing the run appear and succeed.
func TestBrowserDashboard(t *testing.T) {
	f := newFixture(t)
	br := browsertest.New(t, 5*time.Minute)
	site := f.srv.URL
	svc := "web-" + strings.ToLower(fmt.Sprintf("%x", time.Now().UnixNano()%0xffffff))
	f.createService(t, f.alpha, svc)
	cimg := f.componentImage(t)

	tab := br.Context()
	rec := browsertest.Record(t, tab)
	step := func(name string, fn func(t *testing.T, ctx context.Context)) {
		if !t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(tab, 2*time.Minute)
			defer cancel()
			fn(t, ctx)
		}) {
			t.FailNow()
		}
	}

	step("signin", func(t *testing.T, ctx context.Context) {
		if err := chromedp.Do(ctx, chromedp.Navigate(site+"/ui/jobs"), chromedp.WaitVisible(`form input[name="token"]`)); err != nil {
			t.Fatalf("the sign-in form did not show: %v", err)
		}
		if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, site+"/signin?next=/ui/jobs") {
			t.Fatalf("signed out, /ui/jobs should lead to /signin?next=/ui/jobs: at %s", loc)
		}
		if err := chromedp.Do(ctx, chromedp.SendKeys(`form input[name="token"]`, f.alpha), chromedp.Submit(`form input[name="token"]`),
			chromedp.WaitVisible(`table.jobs`)); err != nil {
			t.Fatalf("sign in: %v", err)
		}
		who, err := chromedp.Run(ctx, chromedp.Text(`#who`))
		if err != nil || !strings.Contains(who, "ann") || !strings.Contains(who, "project alpha") || !strings.Contains(who, "member") {
			t.Fatalf("the header should name the token, its project and role: %q %v", who, err)
		}
	})

	var jobID string
	step("job-row-goes-live", func(t *testing.T, ctx context.Context) {
		// A mark on the page: a reload would lose it.
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__noReload = true`)); err != nil {
			t.Fatal(err)
		}
		// Submitted from the CLI, as a person at a terminal beside the browser does.
		j := f.submitCLI(t, f.alpha, "live-report", "echo starting\nsleep 3\necho the-last-line-"+svc)
		jobID = j.ID
		row := fmt.Sprintf(`document.querySelector('tr[data-key=%q]')`, j.ID)
		state, err := browsertest.Eventually(ctx, row+` ? `+row+`.dataset.state : ""`, time.Minute)
		if err != nil {
			t.Fatalf("the job's row did not appear: %v", err)
		}
		t.Logf("the row appeared as %s", state)
		shot(t, ctx, "jobs.png")
		got, err := browsertest.Eventually(ctx, fmt.Sprintf(`(r => r && r.dataset.state === "succeeded" && r.querySelector('.status[data-dot="ok"]') ? r.innerText : "")(%s)`, row), time.Minute)
		if err != nil {
			t.Fatalf("the row did not turn succeeded: %v", err)
		}
		if !strings.Contains(got, "succeeded") || !strings.Contains(got, "live-report") {
			t.Errorf("the row: %q", got)
		}
		if still, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__noReload === true`)); !still {
			t.Errorf("the page reloaded: the row must change in place")
		}
	})

	step("job-page-log", func(t *testing.T, ctx context.Context) {
		if err := chromedp.Do(ctx, chromedp.Click(fmt.Sprintf(`tr[data-key=%q] a`, jobID)), chromedp.WaitVisible(`#log`)); err != nil {
			t.Fatalf("open the job's page: %v", err)
		}
		// The script's last line (berth's own lines about the job's end may follow it).
		last, err := browsertest.Eventually(ctx, `(t => t.includes("the-last-line-`+svc+`") ? t : "")(document.getElementById("log").textContent)`, 30*time.Second)
		if err != nil {
			log, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("log").textContent`))
			t.Fatalf("the log's last line: %v\nthe log: %q", err, log)
		}
		if !strings.Contains(last, "starting") {
			t.Errorf("the whole log: %q", last)
		}
		shot(t, ctx, "job.png")
		// The search box filters the log's lines in the page.
		if err := chromedp.Do(ctx, chromedp.WaitVisible(`#log-search`), chromedp.SendKeys(`#log-search`, "LAST-LINE")); err != nil {
			t.Fatalf("search the log: %v", err)
		}
		got, err := browsertest.Eventually(ctx, `(p => p && !p.hidden ? p.textContent : "")(document.getElementById("log-filtered"))`, 10*time.Second)
		if err != nil || got != "the-last-line-"+svc {
			t.Errorf("the log's search should show only the matching line: %q %v", got, err)
		}
	})

	step("live-log-follows", func(t *testing.T, ctx context.Context) {
		j := f.submit(t, f.alpha, "follower", "echo one\nsleep 2\necho two-"+svc+"\nsleep 1\necho three-"+svc)
		if err := chromedp.Do(ctx, chromedp.Navigate(site+"/ui/jobs/"+j.ID), chromedp.WaitVisible(`#log`)); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__noReload = true`)); err != nil {
			t.Fatal(err)
		}
		if _, err := browsertest.Eventually(ctx, `document.getElementById("log").textContent.includes("three-`+svc+`") ? "y" : ""`, time.Minute); err != nil {
			t.Fatalf("the live log did not reach the last line: %v", err)
		}
		if _, err := browsertest.Eventually(ctx, `document.querySelector('.job-head .status-text').textContent === "succeeded" ? "y" : ""`, 30*time.Second); err != nil {
			t.Fatalf("the job's status did not turn succeeded: %v", err)
		}
		if still, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__noReload === true`)); !still {
			t.Errorf("the job page reloaded")
		}
		if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.getElementById("log").textContent.split("two-`+svc+`").length - 1`)); n != 1 {
			t.Errorf("the live log should hold each line once: %q appears %d times", "two-"+svc, n)
		}
	})

	card := fmt.Sprintf(`document.querySelector('article.card[data-key=%q]')`, svc)
	cardState := func(ctx context.Context, want, dot string) error {
		cond := fmt.Sprintf(`(c => c && c.dataset.state === %q && %s ? "y" : "")(%s)`, want,
			map[bool]string{true: `!c.querySelector(".status[data-dot]")`, false: fmt.Sprintf(`c.querySelector('.status[data-dot=%q]')`, dot)}[dot == ""], card)
		_, err := browsertest.Eventually(ctx, cond, time.Minute)
		return err
	}
	step("service-start-stop", func(t *testing.T, ctx context.Context) {
		if err := chromedp.Do(ctx, chromedp.Navigate(site+"/ui/services"), chromedp.WaitVisible(`article.card`)); err != nil {
			t.Fatal(err)
		}
		if err := cardState(ctx, "stopped", ""); err != nil {
			t.Fatalf("a service not yet started: stopped, no dot: %v", err)
		}
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__noReload = true`)); err != nil {
			t.Fatal(err)
		}
		click := func(label string) {
			t.Helper()
			sel := fmt.Sprintf(`article.card[data-key=%q] button[data-post$="/%s"]`, svc, strings.ToLower(label))
			if err := chromedp.Do(ctx, chromedp.WaitVisible(sel), chromedp.Click(sel)); err != nil {
				t.Fatalf("click %s: %v", label, err)
			}
		}
		click("Start")
		if err := cardState(ctx, "running", "ok"); err != nil {
			t.Fatalf("after start the card should be green and say running: %v", err)
		}
		shot(t, ctx, "services.png")
		click("Stop")
		if err := cardState(ctx, "stopped", ""); err != nil {
			t.Fatalf("after stop the card should have no dot and say stopped: %v", err)
		}
		click("Start")
		if err := cardState(ctx, "running", "ok"); err != nil {
			t.Fatalf("started again: %v", err)
		}
		if still, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__noReload === true`)); !still {
			t.Errorf("the services page reloaded")
		}
		hist, _ := chromedp.Run(ctx, chromedp.Evaluate[string](card+`.querySelector(".history").textContent`))
		if !strings.Contains(hist, "STARTED") || !strings.Contains(hist, "STOPPED") {
			t.Errorf("the state history should list the transitions: %q", hist)
		}
	})

	step("open-app-in-new-tab", func(t *testing.T, ctx context.Context) {
		link := fmt.Sprintf(`article.card[data-key=%q] a[target="_blank"]`, svc)
		newTab := chromedp.WaitNewTarget(ctx, func(info *target.Info) bool { return strings.Contains(info.URL, "/proxy/"+svc+"/") })
		if err := chromedp.Do(ctx, chromedp.WaitVisible(link), chromedp.Click(link)); err != nil {
			t.Fatalf("click Open: %v", err)
		}
		var id target.ID
		select {
		case id = <-newTab:
		case <-ctx.Done():
			t.Fatalf("Open did not open a new tab on /proxy/%s/", svc)
		}
		app, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(id))
		defer cancel()
		if _, err := browsertest.Eventually(app, `document.body && document.body.innerText.includes("hello from `+svc+`") ? "y" : ""`, time.Minute); err != nil {
			text, _ := chromedp.Run(app, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
			t.Fatalf("the app's page in the new tab: %v: %q", err, text)
		}
		if loc, _ := chromedp.Run(app, chromedp.Location()); loc != site+"/proxy/"+svc+"/" {
			t.Errorf("the new tab is at %s", loc)
		}
	})

	step("service-page", func(t *testing.T, ctx context.Context) {
		if err := chromedp.Do(ctx, chromedp.Navigate(site+"/ui/services"), chromedp.Click(fmt.Sprintf(`article.card[data-key=%q] h2 a`, svc)),
			chromedp.WaitVisible(`#service-live`)); err != nil {
			t.Fatalf("open the service's page from its card: %v", err)
		}
		if _, err := browsertest.Eventually(ctx, `(s => s && s.dataset.state === "running" ? "y" : "")(document.querySelector('section[data-key="head"]'))`, time.Minute); err != nil {
			t.Fatalf("the service's page should say running: %v", err)
		}
		hist, _ := chromedp.Run(ctx, chromedp.Text(`.history`))
		if !strings.Contains(hist, "STARTED") || !strings.Contains(hist, "STOPPED") {
			t.Errorf("the state history: %q", hist)
		}
		for _, sel := range []string{`button[data-post$="/rebuild"]`, `a[href$="/context"]`, `a[href$="/build-log"]`} {
			if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel))); n == 0 {
				t.Errorf("the service's page lacks %s", sel)
			}
		}
		if _, err := browsertest.Eventually(ctx, `document.getElementById("svc-log").textContent.includes("`+svc+` serving on 8080") ? "y" : ""`, time.Minute); err != nil {
			log, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("svc-log").textContent`))
			t.Errorf("the live logs should show the container's output: %v: %q", err, log)
		}
		shot(t, ctx, "service.png")
	})

	step("storage-preview-and-upload", func(t *testing.T, ctx context.Context) {
		f.loadTable(t, "alpha", "in.c-web.sales", 120)
		if err := chromedp.Do(ctx, chromedp.Navigate(site+"/ui/storage"), chromedp.WaitVisible(`form#upload`)); err != nil {
			t.Fatalf("the storage page and its upload form: %v", err)
		}
		file := filepath.Join(t.TempDir(), "notes-"+svc+".txt")
		if err := os.WriteFile(file, []byte("uploaded from the browser\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(ctx, chromedp.SetUploadFiles(`form#upload input[type=file]`, []string{file}),
			chromedp.SendKeys(`form#upload input[name=tags]`, "web, test"), chromedp.Click(`form#upload button[type=submit]`)); err != nil {
			t.Fatalf("upload: %v", err)
		}
		row, err := browsertest.Eventually(ctx, `(r => r ? r.innerText : "")(Array.from(document.querySelectorAll("#file-rows tr")).find(r => r.innerText.includes("notes-`+svc+`.txt")))`, time.Minute)
		if err != nil {
			flash, _ := chromedp.Run(ctx, chromedp.Text(`#flash`))
			t.Fatalf("the uploaded file did not appear: %v (flash %q)", err, flash)
		}
		if !strings.Contains(row, "web") || !strings.Contains(row, "test") {
			t.Errorf("the file's row should show its tags: %q", row)
		}
		shot(t, ctx, "storage.png")
		if err := chromedp.Do(ctx, chromedp.Click(`a[href="/ui/storage/tables/in.c-web.sales"]`), chromedp.WaitVisible(`table.preview`)); err != nil {
			t.Fatalf("open the table: %v", err)
		}
		if got, _ := chromedp.Run(ctx, chromedp.Text(`#preview-range`)); got != "Rows 1–50 of 120." {
			t.Errorf("the first page: %q", got)
		}
		shot(t, ctx, "table.png")
		if err := chromedp.Do(ctx, chromedp.Click(`a[rel="next"]`), chromedp.WaitVisible(`a[rel="prev"]`)); err != nil {
			t.Fatalf("the next page: %v", err)
		}
		if got, _ := chromedp.Run(ctx, chromedp.Text(`#preview-range`)); got != "Rows 51–100 of 120." {
			t.Errorf("the second page: %q", got)
		}
		if cell, _ := chromedp.Run(ctx, chromedp.Text(`table.preview tbody tr:first-child td:nth-child(2)`)); cell != "row-051" {
			t.Errorf("the second page's first row: %q", cell)
		}
	})

	step("component-run", func(t *testing.T, ctx context.Context) {
		f.registerComponent(t, "alpha", "cmp-web", cimg)
		f.saveConfig(t, f.alpha, `{"id": "cfg-web", "component": "cmp-web", "name": "Nightly export", "parameters": {"table": "sales", "#api_key": "k-`+svc+`"}}`)
		if err := chromedp.Do(ctx, chromedp.Navigate(site+"/ui/components"), chromedp.WaitVisible(`section.component[data-key="cmp-web"]`)); err != nil {
			t.Fatalf("the components page: %v", err)
		}
		shot(t, ctx, "components.png")
		if err := chromedp.Do(ctx, chromedp.Click(`a[href="/ui/configs/cfg-web"]`), chromedp.WaitVisible(`#config-live`)); err != nil {
			t.Fatalf("open the configuration from the components page: %v", err)
		}
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__noReload = true`)); err != nil {
			t.Fatal(err)
		}
		btn := `button[data-post="/api/v1/configs/cfg-web/run"]`
		if err := chromedp.Do(ctx, chromedp.WaitVisible(btn), chromedp.Click(btn)); err != nil {
			t.Fatalf("click Run: %v", err)
		}
		row, err := browsertest.Eventually(ctx, `(r => r && r.dataset.state === "succeeded" && r.querySelector('.status[data-dot="ok"]') ? r.dataset.job : "")(document.querySelector("#config-runs tr[data-job]"))`, time.Minute)
		if err != nil {
			flash, _ := chromedp.Run(ctx, chromedp.Text(`#flash`))
			t.Fatalf("the run did not appear and succeed on the configuration's page: %v (flash %q)", err, flash)
		}
		if j, err := f.h.M.Get(context.Background(), row); err != nil || j.Component == nil || j.Component.Config.ID != "cfg-web" || j.Owner != "ann" {
			t.Errorf("the run %s should be cfg-web's, by ann: %+v %v", row, j, err)
		}
		if _, err := browsertest.Eventually(ctx, `document.querySelector('section[data-key="state"] pre').textContent.includes('"last": "ok"') ? "y" : ""`, 30*time.Second); err != nil {
			t.Errorf("the state the run saved should show: %v", err)
		}
		if still, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__noReload === true`)); !still {
			t.Errorf("the configuration's page reloaded")
		}
		if text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`)); strings.Contains(text, "k-"+svc) || !strings.Contains(text, "[sealed]") {
			t.Errorf("the secret parameter should show sealed, never its value")
		}
		shot(t, ctx, "config.png")
	})

	step("phone-width", func(t *testing.T, ctx context.Context) {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(site+"/ui/jobs"), chromedp.WaitVisible(`table.jobs`)); err != nil {
			t.Fatal(err)
		}
		// No sideways scrolling at a phone's width.
		wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
		if err != nil || wide {
			t.Errorf("the jobs page is wider than a phone: %v %v", wide, err)
		}
		shot(t, ctx, "jobs-phone.png")
		for _, page := range []string{"/ui/services/" + svc, "/ui/storage", "/ui/storage/tables/in.c-web.sales", "/ui/components", "/ui/configs/cfg-web"} {
			if err := chromedp.Do(ctx, chromedp.Navigate(site+page), chromedp.WaitVisible(`main h1`)); err != nil {
				t.Fatal(err)
			}
			if wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)); err != nil || wide {
				t.Errorf("%s is wider than a phone: %v %v", page, wide, err)
			}
		}
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
			t.Fatal(err)
		}
	})

	// An admin, in a browser of its own, sees the images and the admin page, makes a token
	// (shown once) and revokes ann's: ann's signed-in browser is refused at its next page load.
	admin := browsertest.New(t, 5*time.Minute)
	atab := admin.Context()
	arec := browsertest.Record(t, atab)
	astep := func(name string, fn func(t *testing.T, ctx context.Context)) {
		if !t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(atab, 2*time.Minute)
			defer cancel()
			fn(t, ctx)
		}) {
			t.FailNow()
		}
	}
	astep("admin-images", func(t *testing.T, ctx context.Context) {
		if err := chromedp.Do(ctx, chromedp.Navigate(site+"/ui/images"), chromedp.WaitVisible(`form input[name="token"]`),
			chromedp.SendKeys(`form input[name="token"]`, f.admin), chromedp.Submit(`form input[name="token"]`),
			chromedp.WaitVisible(`table.images`)); err != nil {
			t.Fatalf("an admin signs in and sees the images: %v", err)
		}
		rows, _ := chromedp.Run(ctx, chromedp.Text(`#image-rows`))
		if !strings.Contains(rows, f.h.Img) {
			t.Errorf("the images page should list %s: %q", f.h.Img, rows)
		}
		shot(t, ctx, "images.png")
	})
	astep("admin-token-create", func(t *testing.T, ctx context.Context) {
		if err := chromedp.Do(ctx, chromedp.Navigate(site+"/ui/admin"), chromedp.WaitVisible(`form#token-create`),
			chromedp.SendKeys(`form#token-create input[name=name]`, "carol-"+svc), chromedp.SendKeys(`form#token-create input[name=project]`, "alpha"),
			chromedp.Click(`form#token-create button[type=submit]`)); err != nil {
			t.Fatalf("create a token: %v", err)
		}
		val, err := browsertest.Eventually(ctx, `(b => b && !b.hidden ? b.querySelector("code").textContent : "")(document.getElementById("token-value"))`, 30*time.Second)
		if err != nil {
			t.Fatalf("the new token's value did not show: %v", err)
		}
		if p, err := f.auth.Verify(context.Background(), val); err != nil || p.Name != "carol-"+svc || p.Project != "alpha" {
			t.Errorf("the shown value should be carol's token of alpha: %+v %v", p, err)
		}
		if _, err := browsertest.Eventually(ctx, `document.querySelector('#token-rows tr[data-name="carol-`+svc+`"]') ? "y" : ""`, 30*time.Second); err != nil {
			t.Errorf("carol's row did not appear: %v", err)
		}
		shot(t, ctx, "admin.png")
	})
	astep("admin-revokes-ann", func(t *testing.T, ctx context.Context) {
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(window.confirm = () => true, true)`)); err != nil {
			t.Fatal(err)
		}
		btn := `#token-rows tr[data-name="ann"] button[data-method="DELETE"]`
		if err := chromedp.Do(ctx, chromedp.WaitVisible(btn), chromedp.Click(btn)); err != nil {
			t.Fatalf("click Revoke: %v", err)
		}
		if _, err := browsertest.Eventually(ctx, `(r => r && r.dataset.state === "revoked" ? "y" : "")(document.querySelector('#token-rows tr[data-name="ann"]'))`, 30*time.Second); err != nil {
			t.Fatalf("ann's row should say revoked: %v", err)
		}
	})
	step("revoked-session-refused", func(t *testing.T, ctx context.Context) {
		if err := chromedp.Do(ctx, chromedp.Navigate(site+"/ui/jobs"), chromedp.WaitVisible(`form input[name="token"]`)); err != nil {
			t.Fatalf("ann's next page load should end on the sign-in form: %v", err)
		}
		if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, site+"/signin") {
			t.Errorf("ann's revoked session reached %s", loc)
		}
		if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("table.jobs").length`)); n != 0 {
			t.Errorf("a revoked session sees the jobs")
		}
	})

	if p := rec.Problems(site); len(p) > 0 {
		t.Errorf("requests that failed or script errors:\n%s", strings.Join(p, "\n"))
	}
	if p := arec.Problems(site); len(p) > 0 {
		t.Errorf("the admin's browser: requests that failed or script errors:\n%s", strings.Join(p, "\n"))
	}
}

// shot writes a full-page screenshot into docs/screenshots when BERTH_SCREENSHOTS=1.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv(EnvScreenshots) != "1" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
