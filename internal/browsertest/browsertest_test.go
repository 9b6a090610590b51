package browsertest_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/browsertest"
	"github.com/chromedp/chromedp"
)

// TestRecorder: a page behind a redirect, with one asset that loads and one that 404s; the
// recorder sees the redirect, the good asset, and reports the missing one and the script error.
func TestRecorder(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /start", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/page", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`<!doctype html><html><head><script src="/ok.js"></script><script src="/missing.js"></script></head>
<body><p id="out">waiting</p><script>document.getElementById("out").textContent = "ran " + window.okLoaded; undefinedFunction();</script></body></html>`))
	})
	mux.HandleFunc("GET /ok.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/javascript")
		w.Write([]byte(`window.okLoaded = 42;`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	b := browsertest.New(t, time.Minute)
	tab := b.Context()
	rec := browsertest.Record(t, tab)
	if err := chromedp.Do(tab, chromedp.Navigate(srv.URL+"/start")); err != nil {
		t.Fatal(err)
	}
	got, err := browsertest.Eventually(tab, `document.getElementById("out").textContent.startsWith("ran") ? document.getElementById("out").textContent : ""`, 10*time.Second)
	if err != nil || got != "ran 42" {
		t.Fatalf("page text %q, %v", got, err)
	}
	loc, err := chromedp.Run(tab, chromedp.Location())
	if err != nil || loc != srv.URL+"/page" {
		t.Fatalf("location %q, %v", loc, err)
	}
	var statuses []string
	for _, e := range rec.Entries(srv.URL) {
		statuses = append(statuses, e.String())
	}
	all := strings.Join(statuses, "\n")
	for _, want := range []string{"/start: 303", "/page: 200", "/ok.js: 200", "/missing.js: 404"} {
		if !strings.Contains(all, want) {
			t.Errorf("recorded requests lack %q:\n%s", want, all)
		}
	}
	problems := strings.Join(rec.Problems(srv.URL), "\n")
	if !strings.Contains(problems, "/missing.js: 404") || !strings.Contains(problems, "undefinedFunction") {
		t.Errorf("problems should name the 404 and the script error:\n%s", problems)
	}
	if strings.Contains(problems, "/ok.js") || strings.Contains(problems, "/start") {
		t.Errorf("problems name a request that worked:\n%s", problems)
	}
}
