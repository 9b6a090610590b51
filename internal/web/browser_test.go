package web_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/berthproject/berth/internal/browsertest"
)

// EnvScreenshots, set to 1, makes the browser test write its screenshots into docs/screenshots
// (normal runs leave the docs alone).
const EnvScreenshots = "BERTH_SCREENSHOTS"

// TestBrowserDashboard drives Chromium through the dashboard: it signs in on /signin with a
// token, sees the jobs page, watches a job submitted through the API appear and turn
// succeeded without a reload, opens its page and reads its last log line, and stops and
// starts a service from its card, seeing the dot change each time.
func TestBrowserDashboard(t *testing.T) {
	f := newFixture(t)
	br := browsertest.New(t, 5*time.Minute)
	site := f.srv.URL
	svc := "web-" + strings.ToLower(fmt.Sprintf("%x", time.Now().UnixNano()%0xffffff))
	f.createService(t, f.alpha, svc)

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
		j := f.submit(t, f.alpha, "live-report", "echo starting\nsleep 3\necho the-last-line-"+svc)
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
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
			t.Fatal(err)
		}
	})

	if p := rec.Problems(site); len(p) > 0 {
		t.Errorf("requests that failed or script errors:\n%s", strings.Join(p, "\n"))
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
