package api

import (
	"context"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/service"
)

func jobAt(created, started, finished time.Time) job.Job {
	return job.Job{State: job.StateSucceeded, CreatedAt: created, StartedAt: &started, FinishedAt: &finished}
}

func gather(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// TestMetricsSeries: what the proxy, the services, the queue and storage report becomes the
// documented series, with bounded labels.
func TestMetricsSeries(t *testing.T) {
	m := NewMetrics()
	srv := New(Config{}, Deps{Jobs: &fakeJobs{jobs: map[string]job.Job{}}, Metrics: m,
		ImageStats: func() (int64, int64, int64) { return 1, 2, 0 }})
	m.reg.MustRegister(
		&servicesCollector{list: func(context.Context) ([]service.Service, error) {
			return []service.Service{{Name: "web", ContainerState: service.Started}}, nil
		}, desc: prometheus.NewDesc("berth_service_state", "", []string{"service", "state"}, nil)},
		&storageCollector{usage: func(context.Context) (int64, int64, error) { return 1234, 56, nil },
			desc: prometheus.NewDesc("berth_storage_bytes", "", []string{"kind"}, nil)})
	m.ServiceStarted("web", 1500*time.Millisecond, nil)
	m.ServiceStarted("web", time.Second, os.ErrNotExist)
	m.ProxyRequest("web", 200, 3*time.Millisecond)
	m.ProxyRequest("web", 503, time.Millisecond)
	m.ProxyRequest("web", 0, time.Millisecond)
	m.ProxyWebSocket("web", +1)
	m.ProxyWebSocket("web", +1)
	m.ProxyWebSocket("web", -1)
	m.StorageLoad(20*time.Millisecond, nil)
	now := time.Now()
	srv.ObserveJob(jobAt(now.Add(-5*time.Second), now.Add(-4*time.Second), now))
	body := gather(t, m)
	for _, want := range []string{
		`berth_service_starts_total{result="ok",service="web"} 1`,
		`berth_service_starts_total{result="error",service="web"} 1`,
		`berth_service_cold_start_seconds_sum{service="web"} 1.5`,
		`berth_service_state{service="web",state="STARTED"} 1`,
		`berth_service_state{service="web",state="ERROR"} 0`,
		`berth_proxy_requests_total{code="2xx",service="web"} 1`,
		`berth_proxy_requests_total{code="5xx",service="web"} 1`,
		`berth_proxy_requests_total{code="error",service="web"} 1`,
		`berth_proxy_request_duration_seconds_count{service="web"} 3`,
		`berth_proxy_websockets_open{service="web"} 1`,
		`berth_storage_bytes{kind="tables"} 1234`,
		`berth_storage_bytes{kind="files"} 56`,
		`berth_storage_load_seconds_count 1`,
		`berth_queue_wait_seconds_sum 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Log(body)
	}

	// The dashboard in docs/ only uses metrics berth exports.
	dash, err := os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, n := range regexp.MustCompile(`berth_[a-z_]+`).FindAllString(string(dash), -1) {
		for _, suf := range []string{"_bucket", "_count", "_sum"} {
			n = strings.TrimSuffix(n, suf)
		}
		used[n] = true
	}
	if len(used) < 10 {
		t.Fatalf("the dashboard uses only %d metrics", len(used))
	}
	for n := range used {
		if !strings.Contains(body, "# TYPE "+n+" ") {
			t.Errorf("docs/grafana-dashboard.json uses %s, which berth does not export", n)
		}
	}
}
