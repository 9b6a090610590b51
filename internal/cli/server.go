package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthproject/berth/internal/api"
	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/block"
	"github.com/berthproject/berth/internal/component"
	"github.com/berthproject/berth/internal/image"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/proxy"
	"github.com/berthproject/berth/internal/registry"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/service"
	"github.com/berthproject/berth/internal/storage"
	"github.com/berthproject/berth/internal/store"
)

// serverFlags are `berth server`'s flags.
type serverFlags struct {
	listen       string
	workers      int
	shareRoots   []string
	allowNet     []string
	pipIndex     string
	cranURL      string
	labels       []string
	proxyTimeout time.Duration
	forwardToken bool
	stuckTimeout time.Duration
	publicURL    string
	maxDataSize  string
	strictLimits bool
	svcBuildNet  string
	sessionTTL   time.Duration
	// metricsListen serves /metrics without a token on an address of its own (--metrics-listen).
	metricsListen string
	// auditRetention is how long audit entries are kept (--audit-retention, env
	// BERTH_AUDIT_RETENTION; default 90d; 0 keeps them forever).
	auditRetention string
	// registryService turns on the registry token endpoint for the registry of that name
	// (--registry-service, env BERTH_REGISTRY_SERVICE; default off); registryTokenTTL is its
	// tokens' lifetime (--registry-token-ttl; default 5m).
	registryService  string
	registryTokenTTL time.Duration
	// registryHost is the address image references name the registry by, host:port
	// (--registry-host, env BERTH_REGISTRY_HOST; default off): services published there are
	// pulled with a pull-only token berth issues itself for the service's project.
	registryHost string
	// The image collector: --image-disk-limit (env BERTH_IMAGE_DISK_LIMIT, default 20GB; 0
	// off), --image-disk-high and --image-disk-low (fractions of the limit: a collection starts
	// past high and evicts down to low; defaults 1 and 0.8), --image-gc-interval (default 10m)
	// and --image-min-idle (an image used more recently is kept; default 5m).
	imageDiskLimit string
	imageDiskHigh  float64
	imageDiskLow   float64
	imageGCEvery   time.Duration
	imageMinIdle   time.Duration
	// procs is GOMAXPROCS (--gomaxprocs, env BERTH_GOMAXPROCS; default 0: half the CPUs, see
	// setProcs).
	procs int
}

func newServerCmd(g *globals) *cobra.Command {
	var f serverFlags
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Serve the API (jobs, components, storage, services), the service proxy and the job workers",
		Long: `Run berth's server: a JSON API under /api/v1 (submit, list, get, logs with Server-Sent
Events, cancel), /healthz, /api/v1/openapi.json (the API's OpenAPI document) and /metrics
(Prometheus), and a pool of workers that run jobs in locked-down containers. The store,
workspaces, outputs and logs live in --data-dir.

Every request but /healthz, the OpenAPI document and the sign-in pages needs a bearer token or
a browser session: a browser signs in with a token at /signin, or follows a one-time link from
berth open. --metrics-listen serves /metrics without a token on an address of its own, for a
Prometheus scrape: bind it to loopback or an internal address. On its first start the
server creates an admin token and writes it to <data-dir>/admin-token (mode 0600); make more
with berth token create. Jobs left running by a server that crashed end failed/internal on the next
start, and their containers are removed.

Secrets the store keeps (jobs' secret env values, entities, credentials) are sealed under one
key: BERTH_SECRET_KEY (base64 of 32 bytes) or else <data-dir>/secret.key (created with mode
0600; a looser mode is refused). Back it up apart from the database.`,
		Example: `  berth server --listen 127.0.0.1:8760
  export BERTH_SERVER=http://127.0.0.1:8760 BERTH_TOKEN=$(cat ~/.local/share/berth/admin-token)
  berth job submit --wait examples/shell-hello/block.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runServer(cmd.Context(), g, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", envOr("BERTH_LISTEN", "127.0.0.1:8760"), "address to serve on (env BERTH_LISTEN)")
	fl.StringVar(&f.metricsListen, "metrics-listen", envOr("BERTH_METRICS_LISTEN", ""), "also serve /metrics WITHOUT a token on this address, for a Prometheus scrape: bind it to loopback or an internal address (env BERTH_METRICS_LISTEN; default: off, /metrics on --listen needs a token)")
	fl.StringVar(&f.publicURL, "public-url", envOr("BERTH_PUBLIC_URL", ""), "address users reach this server at; its host is KBC_STACKID in components (env BERTH_PUBLIC_URL; default http://<listen>)")
	fl.IntVar(&f.workers, "workers", 2, "jobs that run at once")
	fl.StringSliceVar(&f.shareRoots, "share-root", nil, "folders submitted mounts may come from; relative sources resolve against the first (default <data-dir>/share)")
	fl.StringSliceVar(&f.allowNet, "allow-network", nil, `networks a block may ask for besides "none" (e.g. bridge)`)
	fl.StringVar(&f.pipIndex, "pip-index-url", os.Getenv("BERTH_PIP_INDEX_URL"), "PEP 503 index for Python dependencies (env BERTH_PIP_INDEX_URL)")
	fl.StringVar(&f.cranURL, "cran-url", os.Getenv("BERTH_CRAN_URL"), "CRAN-style repository for R dependencies (env BERTH_CRAN_URL)")
	fl.StringArrayVar(&f.labels, "label", nil, "extra label KEY=VALUE on every job and service container (repeatable)")
	fl.BoolVar(&f.forwardToken, "allow-forward-token", false, "let components opt in (forward_token) to get the caller's API token as KBC_TOKEN")
	fl.DurationVar(&f.proxyTimeout, "proxy-timeout", 300*time.Second, "longest plain request through the service proxy (WebSockets and event streams are not cut)")
	fl.DurationVar(&f.stuckTimeout, "service-stuck-timeout", 5*time.Minute, "a service state that has not moved for this long becomes ERROR")
	addMaxDataSizeFlag(fl, &f.maxDataSize)
	fl.BoolVar(&f.strictLimits, "strict-limits", false, "refuse a service asking for more CPUs than the engine has, instead of clamping it with a warning")
	fl.StringVar(&f.auditRetention, "audit-retention", envOr("BERTH_AUDIT_RETENTION", "90d"), "how long the audit log keeps an entry: days (90d) or a duration (720h); 0 keeps them forever (env BERTH_AUDIT_RETENTION)")
	fl.DurationVar(&f.sessionTTL, "session-ttl", auth.DefaultSessionTTL, "how long a browser stays signed in (a session made at /signin or by a berth open link)")
	fl.StringVar(&f.registryService, "registry-service", envOr("BERTH_REGISTRY_SERVICE", ""), "serve the token endpoint (/api/v1/registry/token) of the image registry of this name (its auth.token.service); its rootcertbundle is <data-dir>/registry-token.crt (env BERTH_REGISTRY_SERVICE; default: off)")
	fl.StringVar(&f.registryHost, "registry-host", envOr("BERTH_REGISTRY_HOST", ""), "the registry's host:port as image references name it: published services' images are pulled from it with a pull-only token of their project (needs --registry-service; env BERTH_REGISTRY_HOST; default: off)")
	fl.DurationVar(&f.registryTokenTTL, "registry-token-ttl", registry.DefaultTTL, "lifetime of a registry token (1m to 1h)")
	fl.StringVar(&f.imageDiskLimit, "image-disk-limit", envOr("BERTH_IMAGE_DISK_LIMIT", "20GB"), "most the images berth may remove (generated, service, component, prune-on-cleanup) may take on the engine's disk before the least recently used are evicted (e.g. 20GB, 500MB; 0: no limit; env BERTH_IMAGE_DISK_LIMIT)")
	fl.Float64Var(&f.imageDiskHigh, "image-disk-high", 1, "high watermark, a fraction of --image-disk-limit: a collection starts past it")
	fl.Float64Var(&f.imageDiskLow, "image-disk-low", 0.8, "low watermark, a fraction of --image-disk-limit: a collection evicts down to it")
	fl.DurationVar(&f.imageGCEvery, "image-gc-interval", 10*time.Minute, "how often the image collector runs (it also runs after each generated image's build)")
	fl.DurationVar(&f.imageMinIdle, "image-min-idle", image.DefaultMinIdle, "an image used less than this long ago is never evicted (its container may be about to start)")
	fl.IntVar(&f.procs, "gomaxprocs", envInt("BERTH_GOMAXPROCS", 0), "CPUs that run berth's own code at once; 0: the GOMAXPROCS environment variable, else half the CPUs (at least 1), which costs the service proxy the least CPU per request (env BERTH_GOMAXPROCS)")
	fl.StringVar(&f.svcBuildNet, "service-build-network", service.BuildNetworkBridge, "network of a service image's RUN steps: bridge (reaches the internet) or none; never the host's")
	return cmd
}

// envInt is the integer in env k, or def when it is unset or not a number.
func envInt(k string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return n
	}
	return def
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func runServer(ctx context.Context, g *globals, f serverFlags) error {
	log := g.logger()
	setProcs(f.procs)
	dataDir, err := filepath.Abs(g.dataDir)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return withCode(ExitFailure, fmt.Errorf("create data dir: %w", err))
	}
	lock, err := os.OpenFile(filepath.Join(dataDir, "server.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return withCode(ExitFailure, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return withCode(ExitFailure, fmt.Errorf("another berth server is using %s", dataDir))
	}
	// The key first: a wrong one stops the start before anything else is touched.
	sealer, err := loadSealer(dataDir)
	if err != nil {
		return withCode(ExitFailure, err)
	}
	extra := map[string]string{}
	for _, l := range f.labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" || strings.HasPrefix(k, "berth.") && k != "berth.test" {
			return withCode(ExitUsage, fmt.Errorf("--label %q: want KEY=VALUE, and berth.* keys are berth's own", l))
		}
		extra[k] = v
	}
	shareRoots := f.shareRoots
	if len(shareRoots) == 0 {
		shareRoots = []string{filepath.Join(dataDir, "share")}
	}
	for i, r := range shareRoots {
		abs, err := filepath.Abs(r)
		if err != nil {
			return withCode(ExitUsage, err)
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return withCode(ExitFailure, fmt.Errorf("--share-root %s: %w", r, err))
		}
		shareRoots[i] = abs
	}

	if f.sessionTTL <= 0 {
		return withCode(ExitUsage, fmt.Errorf("--session-ttl: %v is not allowed; use a positive duration such as 12h or 30m", f.sessionTTL))
	}
	auditRetention, err := api.ParseLifetime(f.auditRetention)
	if err != nil {
		return withCode(ExitUsage, fmt.Errorf("--audit-retention: %w", err))
	}
	if f.publicURL != "" {
		if u, err := url.Parse(f.publicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return withCode(ExitUsage, fmt.Errorf("--public-url: %q is not allowed; use http(s)://host[:port]", f.publicURL))
		}
	}
	imgPolicy, err := imagePolicy(f.imageDiskLimit, f.imageDiskHigh, f.imageDiskLow, f.imageMinIdle)
	if err != nil {
		return err
	}
	if f.imageGCEvery <= 0 {
		return withCode(ExitUsage, fmt.Errorf("--image-gc-interval: %v is not allowed; use a positive duration such as 10m", f.imageGCEvery))
	}
	if err := service.CheckBuildNetwork(f.svcBuildNet); err != nil {
		return withCode(ExitUsage, fmt.Errorf("--service-build-network: %w", err))
	}
	// Servers before the instance file labelled their objects srv-<hash of the path>: a data
	// dir from then keeps that id, so its running services are found again.
	sum := sha256.Sum256([]byte(dataDir))
	instance, err := dataDirInstance(dataDir, "srv-"+hex.EncodeToString(sum[:])[:10])
	if err != nil {
		return withCode(ExitFailure, err)
	}
	eng, err := openEngine(ctx, instance)
	if err != nil {
		return withCode(ExitFailure, err)
	}
	defer eng.Close()
	caps, err := probeEngine(ctx, eng, g.stderr)
	if err != nil {
		return withCode(ExitFailure, err)
	}
	st, err := openStore(ctx, dataDir)
	if err != nil {
		return withCode(ExitFailure, err)
	}
	defer st.Close()
	if err := sealStore(ctx, st, sealer, g.stderr); err != nil {
		return withCode(ExitFailure, err)
	}

	// Every image berth builds or uses is recorded (its last use orders the collector), and
	// generated images carry the instance, so this server lists and collects its own.
	icfg := imageConfig(dataDir, f.pipIndex, f.cranURL)
	icfg.ExtraLabels = map[string]string{runtime.LabelInstance: instance}
	images := image.NewManager(eng, icfg, log)
	imgRecords := image.NewRecords(eng, st, instance, log)
	imgRecords.Pins = imagePins(st)
	images.SetRecords(imgRecords)
	collector := image.NewCollector(imgRecords, imgPolicy)
	imgRecords.OnBuilt = collector.Kick
	recEng := recordingEngine{Engine: eng, rec: imgRecords}
	a := auth.New(st)
	a.SessionTTL = f.sessionTTL
	// Behind a TLS-terminating proxy the request itself is plain HTTP: the public URL tells.
	a.SecureCookies = strings.HasPrefix(f.publicURL, "https://")
	if f.publicURL != "" {
		u, _ := url.Parse(f.publicURL)
		if err := a.TrustOrigin(u.Scheme + "://" + u.Host); err != nil {
			return withCode(ExitUsage, fmt.Errorf("--public-url: %w", err))
		}
	}
	tokenPath := filepath.Join(dataDir, adminTokenFile)
	created, err := a.EnsureAdmin(ctx, tokenPath)
	if err != nil {
		return withCode(ExitFailure, err)
	}
	if created {
		fmt.Fprintf(g.stderr, "berth: created an admin token in %s (mode 0600); use it as BERTH_TOKEN\n", tokenPath)
	}

	stor, err := storage.New(st, filepath.Join(dataDir, "storage"))
	if err != nil {
		return withCode(ExitFailure, err)
	}
	defer stor.Close()       // checkpoints the table databases
	var reg *registry.Issuer // made below, with the services
	ccfg := component.Config{Storage: stor, Sealer: sealer, PublicURL: f.publicURL,
		Pull: componentPull(eng, f.registryHost, func() *registry.Issuer { return reg })}
	if ccfg.PublicURL == "" {
		ccfg.PublicURL = "http://" + f.listen
	}
	jcfg := job.DefaultConfig(dataDir)
	jcfg.Executors = map[string]job.Executor{job.KindBlock: block.New(), job.KindComponent: component.New(ccfg)}
	jcfg.Workers = f.workers
	jcfg.Instance = instance
	jcfg.ShareRoots = shareRoots
	jcfg.AllowedNetworks = append([]string{"none"}, f.allowNet...)
	jcfg.ExtraLabels = extra
	if jcfg.MaxDataSize, err = parseMaxDataSize(f.maxDataSize); err != nil {
		return err
	}
	sayDiskCap(g.stderr, dataDir, jcfg.MaxDataSize)
	metrics := api.NewMetrics()
	stor.OnLoad = metrics.StorageLoad
	var apiSrv *api.Server
	jcfg.OnFinish = func(j job.Job) {
		if apiSrv != nil {
			apiSrv.ObserveJob(j)
		}
	}
	m, err := job.New(jcfg, st, recEng, images, log)
	if err != nil {
		return withCode(ExitFailure, err)
	}
	scfg := service.DefaultConfig(filepath.Join(dataDir, "services"), instance)
	scfg.ExtraLabels = extra
	scfg.StuckTimeout = f.stuckTimeout
	scfg.Engine = &caps
	scfg.StrictLimits = f.strictLimits
	scfg.BuildNetwork = f.svcBuildNet
	scfg.OnStart = metrics.ServiceStarted
	if f.registryHost != "" {
		if f.registryService == "" {
			return withCode(ExitUsage, fmt.Errorf("--registry-host needs --registry-service: berth pulls with tokens it issues itself"))
		}
		scfg.RegistryAuth = pullAuth(f.registryHost, func() *registry.Issuer { return reg })
	}
	svcs := service.New(scfg, st, recEng, log)
	if f.registryService != "" {
		rcfg := registry.DefaultConfig(f.registryService, dataDir)
		rcfg.TTL = f.registryTokenTTL
		if rcfg.TTL < registry.MinTTL || rcfg.TTL > registry.MaxTTL {
			return withCode(ExitUsage, fmt.Errorf("--registry-token-ttl: %v is not allowed; use %v to %v", rcfg.TTL, registry.MinTTL, registry.MaxTTL))
		}
		if reg, err = registry.New(rcfg); err != nil {
			return withCode(ExitFailure, fmt.Errorf("registry token issuer: %w", err))
		}
		fmt.Fprintf(g.stderr, "berth: registry tokens for %q at /api/v1/registry/token (issuer %q, rootcertbundle %s)\n", f.registryService, rcfg.Issuer, reg.CertPath())
	}
	prx := proxy.New(proxy.Config{RequestTimeout: f.proxyTimeout, Log: log, Observer: metrics, Authorize: proxy.Authorize}, svcs)
	apiSrv = api.New(api.Config{ShareRoot: shareRoots[0], PublicURL: f.publicURL}, api.Deps{
		Services:          svcs,
		Proxy:             prx,
		Metrics:           metrics,
		AllowForwardToken: f.forwardToken,
		Jobs:              m, Auth: a, Log: log,
		ImageStats: func() (int64, int64, int64) {
			s := images.Stats()
			return s.Builds, s.CacheHits, s.BuildFailures
		},
		BuildLog: images.BuildLog,
		Images:   collector,
		Store:    st,
		Storage:  stor,
		Sealer:   sealer,
		Registry: reg,
		Engine:   &caps,
		ImageExists: func(ctx context.Context, ref string) error {
			_, err := eng.InspectImage(ctx, ref)
			return err
		},
	})
	if err := m.Start(ctx); err != nil {
		return withCode(ExitFailure, fmt.Errorf("start jobs: %w", err))
	}
	if err := svcs.Start(ctx); err != nil {
		m.Close(context.Background())
		return withCode(ExitFailure, fmt.Errorf("start services: %w", err))
	}
	defer svcs.Close()

	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		m.Close(context.Background())
		return withCode(ExitUsage, fmt.Errorf("--listen %s: %w", f.listen, err))
	}
	if f.metricsListen != "" {
		mln, err := net.Listen("tcp", f.metricsListen)
		if err != nil {
			ln.Close()
			m.Close(context.Background())
			return withCode(ExitUsage, fmt.Errorf("--metrics-listen %s: %w", f.metricsListen, err))
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", apiSrv.MetricsHandler())
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go msrv.Serve(mln)
		defer msrv.Close()
		fmt.Fprintf(g.stderr, "berth: metrics without a token on http://%s/metrics%s\n", mln.Addr(), publicWarning(mln.Addr()))
	}
	srv := &http.Server{Handler: apiSrv, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(g.stderr, "berth: serving on http://%s (data dir %s, %d workers, share root %s)\n",
		ln.Addr(), dataDir, jcfg.Workers, strings.Join(shareRoots, ", "))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	go purgeHourly(ctx, stor, st, auditRetention, log)
	if imgPolicy.Limit > 0 {
		go collector.Loop(ctx, f.imageGCEvery)
		fmt.Fprintf(g.stderr, "berth: image disk limit %s: past it the least recently used removable images are evicted down to %s\n",
			image.HumanSize(imgPolicy.Limit), image.HumanSize(imgPolicy.Low))
	} else {
		fmt.Fprintln(g.stderr, "berth: no image disk limit (--image-disk-limit 0): generated, service and component images are kept forever")
	}
	select {
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			return withCode(ExitFailure, err)
		}
	case <-ctx.Done():
		fmt.Fprintln(g.stderr, "berth: shutting down: finishing running jobs (up to 20s)")
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	m.Close(sctx)
	return nil
}

// publicWarning warns when the unauthenticated metrics listener is not on a loopback or
// private address.
func publicWarning(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || ta.IP.IsLoopback() || ta.IP.IsPrivate() {
		return ""
	}
	return " (WARNING: not a loopback or private address; anyone who reaches it reads the metrics)"
}

// purgeHourly removes stored files whose time ran out (files a component wrote without
// is_permanent) and audit entries older than auditRetention (0: none), at start and then
// every hour, until ctx ends.
func purgeHourly(ctx context.Context, stor *storage.Storage, st *store.Store, auditRetention time.Duration, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := stor.PurgeExpired(ctx, time.Now()); err != nil && ctx.Err() == nil {
			log.Warn("remove expired files", "err", err)
		} else if n > 0 {
			log.Info("removed expired files", "count", n)
		}
		if auditRetention > 0 {
			if n, err := st.PurgeAudit(ctx, time.Now().Add(-auditRetention)); err != nil && ctx.Err() == nil {
				log.Warn("remove old audit entries", "err", err)
			} else if n > 0 {
				log.Info("removed old audit entries", "count", n, "retention", auditRetention)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
