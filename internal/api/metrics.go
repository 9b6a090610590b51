package api

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berthproject/berth/internal/service"
)

// Metrics are berth's Prometheus metrics. Labels stay bounded: a service label only ever
// names a registered service, codes are classes (2xx…5xx), states and reasons are enums.
// Made once by the server's wiring and handed to the proxy (proxy.Config.Observer), the
// service manager (service.Config.OnStart), storage (Storage.OnLoad) and the API (Deps.Metrics),
// which serves it at /metrics and, with `server --metrics-listen`, on a listener of its own.
// Safe for concurrent use.
type Metrics struct {
	reg          *prometheus.Registry
	jobDuration  *prometheus.HistogramVec
	queueWait    prometheus.Histogram
	serviceStart *prometheus.CounterVec
	coldStart    *prometheus.HistogramVec
	proxyReqs    *prometheus.CounterVec
	proxyLatency *prometheus.HistogramVec
	websockets   *prometheus.GaugeVec
	storageLoad  prometheus.Histogram
}

// NewMetrics makes the metrics and their registry.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.jobDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "berth_job_duration_seconds", Help: "Time from a job's start to its end, by final state and reason.",
		Buckets: prometheus.ExponentialBuckets(0.05, 2.5, 12),
	}, []string{"state", "reason"})
	m.queueWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "berth_queue_wait_seconds", Help: "Time a job waited in the queue, from its submission to a worker taking it.",
		Buckets: []float64{.01, .05, .1, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
	})
	m.serviceStart = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "berth_service_starts_total", Help: "Service starts a request waited for, by service and result (ok, error).",
	}, []string{"service", "result"})
	m.coldStart = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "berth_service_cold_start_seconds", Help: "Time a successful start took, from the first request to the service answering.",
		Buckets: prometheus.ExponentialBuckets(0.1, 2, 12),
	}, []string{"service"})
	m.proxyReqs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "berth_proxy_requests_total", Help: "Requests the proxy forwarded to a service, by service and answer class.",
	}, []string{"service", "code"})
	m.proxyLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "berth_proxy_request_duration_seconds", Help: "Time from a request reaching the proxy to the service's answer being written (a WebSocket: to its upgrade).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"service"})
	m.websockets = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "berth_proxy_websockets_open", Help: "WebSockets open through the proxy, by service.",
	}, []string{"service"})
	m.storageLoad = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "berth_storage_load_seconds", Help: "Time a table load into storage took (API imports and components' output mapping).",
		Buckets: prometheus.ExponentialBuckets(0.005, 3, 10),
	})
	m.reg.MustRegister(m.jobDuration, m.queueWait, m.serviceStart, m.coldStart, m.proxyReqs, m.proxyLatency, m.websockets, m.storageLoad)
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

// ServiceStarted records a start a request waited for (service.Config.OnStart).
func (m *Metrics) ServiceStarted(name string, d time.Duration, err error) {
	if err != nil {
		m.serviceStart.WithLabelValues(name, "error").Inc()
		return
	}
	m.serviceStart.WithLabelValues(name, "ok").Inc()
	m.coldStart.WithLabelValues(name).Observe(d.Seconds())
}

var codeClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// ProxyRequest records a request forwarded to a service (proxy.Observer).
func (m *Metrics) ProxyRequest(name string, code int, d time.Duration) {
	class := "error" // no answer came (the client went away)
	if code >= 100 && code < 600 {
		class = codeClasses[code/100-1]
	}
	m.proxyReqs.WithLabelValues(name, class).Inc()
	m.proxyLatency.WithLabelValues(name).Observe(d.Seconds())
}

// ProxyWebSocket records a WebSocket opening (+1) or closing (-1) (proxy.Observer).
func (m *Metrics) ProxyWebSocket(name string, delta int) {
	m.websockets.WithLabelValues(name).Add(float64(delta))
}

// StorageLoad records a table load (storage.Storage.OnLoad).
func (m *Metrics) StorageLoad(d time.Duration, err error) {
	if err == nil {
		m.storageLoad.Observe(d.Seconds())
	}
}

// registerCollectors adds what is read at scrape time: jobs and the queue from the job
// service, the image counters, the services' states and the storage's size.
func (s *Server) registerCollectors(m *Metrics) {
	d := s.d
	m.reg.MustRegister(&jobsCollector{jobs: d.Jobs,
		desc:  prometheus.NewDesc("berth_jobs", "Jobs by state.", []string{"state"}, nil),
		depth: prometheus.NewDesc("berth_queue_depth", "Jobs waiting in the queue for a worker.", nil, nil)})
	if d.ImageStats != nil {
		stat := func(i int) func() float64 {
			return func() float64 {
				b, h, f := d.ImageStats()
				return float64([]int64{b, h, f}[i])
			}
		}
		m.reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "berth_image_builds_total", Help: "Generated images built."}, stat(0)),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "berth_image_cache_hits_total", Help: "Image ensures answered without a build."}, stat(1)),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "berth_image_build_failures_total", Help: "Generated image builds that failed."}, stat(2)),
		)
	}
	if d.Services != nil {
		m.reg.MustRegister(&servicesCollector{list: d.Services.List,
			desc: prometheus.NewDesc("berth_service_state", "1 for each service's container state, 0 for the others.", []string{"service", "state"}, nil)})
	}
	if d.Storage != nil {
		m.reg.MustRegister(&storageCollector{usage: d.Storage.Usage,
			desc: prometheus.NewDesc("berth_storage_bytes", "Bytes kept by storage: table rows and files.", []string{"kind"}, nil)})
	}
}

// jobsCollector reports berth_jobs{state} and berth_queue_depth from the store at scrape time.
type jobsCollector struct {
	jobs        Jobs
	desc, depth *prometheus.Desc
}

func (c *jobsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc; ch <- c.depth }

func (c *jobsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.jobs.Counts(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, st := range allStates {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[st]), string(st))
	}
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(counts["queued"]))
}

var serviceStates = []string{service.PendingStart, service.Starting, service.Started,
	service.PendingStop, service.Stopped, service.SystemStopped, service.Error}

type servicesCollector struct {
	list func(context.Context) ([]service.Service, error)
	desc *prometheus.Desc
}

func (c *servicesCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *servicesCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := c.list(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, svc := range list {
		for _, st := range serviceStates {
			v := 0.0
			if svc.ContainerState == st {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, svc.Name, st)
		}
	}
}

// storageCollector reports the storage's size, measured at most every usageEvery (it sums
// every stored row).
type storageCollector struct {
	usage func(context.Context) (int64, int64, error)
	desc  *prometheus.Desc

	mu            sync.Mutex
	at            time.Time
	tables, files int64
}

const usageEvery = 30 * time.Second

func (c *storageCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *storageCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) > usageEvery {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t, f, err := c.usage(ctx)
		cancel()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.desc, err)
			return
		}
		c.tables, c.files, c.at = t, f, time.Now()
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(c.tables), "tables")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(c.files), "files")
}
