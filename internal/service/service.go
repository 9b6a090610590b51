// Package service runs long-running containers ("services") that a platform's plugins call
// through berth's proxy: a folder with a Dockerfile and a container.json is built and
// validated, started when the first request arrives (concurrent requests wait on one start),
// stopped when it idles, and started again by the next request. Every state transition is
// stored with its time; running services are re-adopted when berth restarts.
package service

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/spec"
	"github.com/berthproject/berth/internal/store"
)

// Image states.
const (
	ImagePendingValidation = "PENDING_VALIDATION"
	ImageValidating        = "VALIDATING"
	ImageReady             = "READY"
	ImageError             = "ERROR"
)

// Container states.
const (
	PendingStart  = "PENDING_START"
	Starting      = "STARTING"
	Started       = "STARTED"
	PendingStop   = "PENDING_STOP"
	Stopped       = "STOPPED"
	Error         = "ERROR"
	SystemStopped = "SYSTEM_STOPPED" // stopped for idling; the next request starts it again
)

// LabelHealthPath is the image label naming a readiness path (e.g. /healthz).
const LabelHealthPath = "berth.health-path"

// LabelNetwork names, on a service container, the network it was started on: a container found
// on another network (an older berth's shared one) is not re-adopted.
const LabelNetwork = "berth.network"

// Build networks a service image's RUN steps may use (Config.BuildNetwork).
const (
	BuildNetworkBridge = "bridge"
	BuildNetworkNone   = "none"
)

// Errors.
var (
	ErrNotFound = errors.New("service: not found")
	ErrNotReady = errors.New("service: image not ready")
)

// Config configures the manager.
type Config struct {
	// DataDir keeps each service's build context and build log (<data-dir>/services).
	DataDir string
	// Instance is the data dir's instance id: it labels and names this berth's service
	// containers, and re-adoption and clean-up touch only containers carrying it. Required.
	Instance string
	// BuildNetwork is the network a service image's RUN steps use: "bridge" (reaches the
	// internet, so apt-get works) or "none" (server flag --service-build-network; default
	// "bridge"). The host network is never used: a service's Dockerfile is its author's code.
	BuildNetwork string
	// StuckTimeout turns a state that has not moved for this long into ERROR (default 5 min).
	StuckTimeout time.Duration
	// ReadyTimeout bounds a start: the port answering and the health path passing (default 2 min).
	ReadyTimeout time.Duration
	// PollInterval is how often readiness is checked while starting (default 20 ms).
	PollInterval time.Duration
	// CheckInterval is how often idle and stuck services are looked for (default 1 s).
	CheckInterval time.Duration
	// StopGrace is how long a stopping service gets before it is killed (default 5 s).
	StopGrace time.Duration
	// ExtraLabels are added to service containers and images (tests set berth.test=1).
	ExtraLabels map[string]string
	// Engine is what the engine can enforce, probed at start-up; nil: Start probes it when the
	// runtime is a runtime.Prober (a runtime that is not gets limits as asked).
	Engine *runtime.Capabilities
	// StrictLimits refuses at create a cpu above the engine's CPUs instead of clamping it
	// with a warning (flag --strict-limits, default false).
	StrictLimits bool
	// OnStart, if set, is told of each start a request waited for (Ensure): the service, how
	// long the start took (image build wait, container start, readiness) and its error.
	OnStart func(service string, d time.Duration, err error)
	// RegistryAuth, if set, gives the credential a service image of project is pulled with
	// from the registry at host (pull.go); it refuses a host it has no credential for. Nil:
	// images naming a registry are refused.
	RegistryAuth func(project, host, repo string) (runtime.RegistryAuth, error)
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig(dataDir, instance string) Config {
	return Config{DataDir: dataDir, Instance: instance, BuildNetwork: BuildNetworkBridge,
		StuckTimeout: 5 * time.Minute, ReadyTimeout: 2 * time.Minute, PollInterval: 20 * time.Millisecond,
		CheckInterval: time.Second, StopGrace: 5 * time.Second}
}

// ServiceNetwork is the network a service's container lives on, alone: berth-svc-<instance>-<name>.
// Berth's proxy reaches the container from the host; no other service's container joins it.
func (c Config) ServiceNetwork(name string) string {
	if c.Instance == "" {
		return "berth-svc-" + name
	}
	return "berth-svc-" + c.Instance + "-" + name
}

// CheckBuildNetwork refuses a build network other than bridge and none.
func CheckBuildNetwork(n string) error {
	if n != BuildNetworkBridge && n != BuildNetworkNone {
		return fmt.Errorf("service build network %q: allowed: %s, %s", n, BuildNetworkBridge, BuildNetworkNone)
	}
	return nil
}

// Networks is what a runtime needs to give each service a network of its own. Without it a
// service cannot start.
type Networks interface {
	// CreateNetwork makes the network if it does not exist (idempotent).
	CreateNetwork(ctx context.Context, name string, labels map[string]string, o runtime.NetworkOptions) error
	// RemoveNetwork removes a network; an absent one is fine.
	RemoveNetwork(ctx context.Context, name string) error
	// ListNetworks returns the names of the networks carrying every given label.
	ListNetworks(ctx context.Context, labels map[string]string) ([]string, error)
}

// Service is a service as the API shows it.
type Service struct {
	Name               string               `json:"name"`
	Project            string               `json:"project"`
	Package            string               `json:"package"`
	Port               int                  `json:"port"`
	HealthPath         string               `json:"health_path,omitempty"`
	Container          spec.ContainerJSON   `json:"container_json"`
	Image              string               `json:"image,omitempty"`
	ImageState         string               `json:"image_state"`
	ImageReason        string               `json:"image_reason,omitempty"`
	ImageChangedAt     time.Time            `json:"image_changed_at"`
	ContainerState     string               `json:"container_state"`
	ContainerID        string               `json:"container_id,omitempty"`
	ContainerReason    string               `json:"container_reason,omitempty"`
	ContainerChangedAt time.Time            `json:"container_changed_at"`
	Warnings           []string             `json:"warnings,omitempty"`
	Events             []store.ServiceEvent `json:"events,omitempty"`
	ActiveConnections  int64                `json:"active_connections"`
	LastActivity       *time.Time           `json:"last_activity,omitempty"`
}

// svc is a service's live state in memory: the address the proxy forwards to, the start in
// flight, and its activity.
type svc struct {
	mu       sync.Mutex
	name     string
	addr     string
	task     runtime.TaskID
	starting chan struct{} // closed when the start in flight ends
	stopping chan struct{} // closed when the stop in flight ends; a start waits for it
	startErr error
	busy     bool // a start, stop or build is in flight (stuck detection leaves it alone)

	active       atomic.Int64
	lastActivity atomic.Int64 // unix nanoseconds
}

// Manager owns services. Safe for concurrent use.
type Manager struct {
	cfg Config
	st  *store.Store
	rt  runtime.Runtime
	log *slog.Logger

	capsMu sync.Mutex
	caps   *runtime.Capabilities // what the engine enforces; nil when the runtime cannot say

	mu    sync.Mutex
	svcs  map[string]*svc
	known map[string]string // defined services → their project, so the proxy's lookup never touches the store
	modes sync.Map          // service name → spec.PrefixMode of its running container (prefix.go)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New makes a manager; Start re-adopts running services and starts the idle and stuck checks.
func New(cfg Config, st *store.Store, rt runtime.Runtime, log *slog.Logger) *Manager {
	d := DefaultConfig(cfg.DataDir, cfg.Instance)
	if cfg.BuildNetwork == "" {
		cfg.BuildNetwork = d.BuildNetwork
	}
	if cfg.StuckTimeout == 0 {
		cfg.StuckTimeout = d.StuckTimeout
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = d.ReadyTimeout
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = d.PollInterval
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = d.CheckInterval
	}
	if cfg.StopGrace == 0 {
		cfg.StopGrace = d.StopGrace
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, st: st, rt: rt, log: log, caps: cfg.Engine, svcs: map[string]*svc{}, known: map[string]string{}, ctx: ctx, cancel: cancel}
}

// capabilities is what the engine enforces: the configured value, else the runtime's probe
// (kept once it succeeded), else nil when the runtime cannot say.
func (m *Manager) capabilities(ctx context.Context) (*runtime.Capabilities, error) {
	m.capsMu.Lock()
	defer m.capsMu.Unlock()
	if m.caps != nil {
		return m.caps, nil
	}
	p, ok := m.rt.(runtime.Prober)
	if !ok {
		return nil, nil
	}
	c, err := p.Capabilities(ctx)
	if err != nil {
		return nil, err
	}
	m.caps = &c
	return m.caps, nil
}

func (m *Manager) svc(name string) *svc {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.svcs[name]
	if !ok {
		s = &svc{name: name}
		s.lastActivity.Store(time.Now().UnixNano())
		m.svcs[name] = s
	}
	return s
}

func (m *Manager) labels(name string) map[string]string {
	l := map[string]string{}
	for k, v := range m.cfg.ExtraLabels {
		l[k] = v
	}
	l[runtime.LabelManaged] = "true"
	l[runtime.LabelKind] = runtime.KindService
	l[runtime.LabelService] = name
	if m.cfg.Instance != "" {
		l[runtime.LabelInstance] = m.cfg.Instance
	}
	return l
}

func (m *Manager) dir(name string) string { return filepath.Join(m.cfg.DataDir, name) }

// setContainer stores a container state transition. A failed write is logged and returned:
// the caller decides what it undoes, nothing goes on as if it had been stored.
func (m *Manager) setContainer(ctx context.Context, name, state, id, reason string) error {
	if err := m.st.SetContainerState(ctx, name, state, id, reason); err != nil {
		m.log.Error("record a service's container state", "service", name, "state", state, "err", err)
		return fmt.Errorf("record service %s as %s: %w", name, state, err)
	}
	return nil
}

// setImage stores an image state transition; a failed write is logged and returned.
func (m *Manager) setImage(ctx context.Context, name, state, ref, reason string) error {
	if err := m.st.SetImageState(ctx, name, state, ref, reason); err != nil {
		m.log.Error("record a service's image state", "service", name, "state", state, "err", err)
		return fmt.Errorf("record the image of service %s as %s: %w", name, state, err)
	}
	return nil
}

// own selects this instance's service containers (of one service, when name is set): another
// berth on the engine may run a service of the same name.
func (m *Manager) own(name string) map[string]string {
	sel := map[string]string{runtime.LabelManaged: "true", runtime.LabelKind: runtime.KindService, runtime.LabelInstance: m.cfg.Instance}
	if name != "" {
		sel[runtime.LabelService] = name
	}
	return sel
}

// containerName is a service's container name, berth-<instance>-svc-<name>.
func (m *Manager) containerName(name string) string {
	return "berth-" + m.cfg.Instance + "-svc-" + name
}

// Start re-adopts running service containers, removes the containers and networks no service
// owns, resumes interrupted builds, and starts the idle and stuck checks.
func (m *Manager) Start(ctx context.Context) error {
	if _, err := m.capabilities(ctx); err != nil {
		return err
	}
	rows, err := m.st.ListServices(ctx)
	if err != nil {
		return err
	}
	if m.cfg.Instance == "" {
		return errors.New("service manager: no instance: berth only touches containers labelled with its own")
	}
	tasks, err := m.rt.List(ctx, m.own(""))
	if err != nil {
		return err
	}
	byName := map[string]runtime.TaskStatus{}
	for _, t := range tasks {
		byName[t.Labels[runtime.LabelService]] = t
	}
	for _, r := range rows {
		m.mu.Lock()
		m.known[r.Name] = projectOf(r)
		m.mu.Unlock()
		s := m.svc(r.Name)
		t, ok := byName[r.Name]
		delete(byName, r.Name)
		switch {
		case r.ContainerState == Started && ok && t.Running && t.Labels[LabelNetwork] != m.cfg.ServiceNetwork(r.Name):
			// Started by an older berth on a network other services share: start it again alone.
			m.removeTask(ctx, r.Name, t.ID)
			if err := m.setContainer(ctx, r.Name, Stopped, "", "its container was not on the service's own network"); err != nil {
				return err
			}
		case r.ContainerState == Started && ok && t.Running:
			addr, err := m.rt.Address(ctx, t.ID, r.Port)
			if err == nil {
				if err := m.notePrefixMode(ctx, r.Name, t.Image); err != nil {
					m.log.Warn("re-adopted service: its prefix mode is not known, strip is used", "service", r.Name, "err", err)
				}
				s.addr, s.task = addr, t.ID
				m.log.Info("re-adopted a running service", "service", r.Name, "container", string(t.ID))
				continue
			}
			m.removeTask(ctx, r.Name, t.ID)
			if err := m.setContainer(ctx, r.Name, Stopped, "", "its container had no address after a restart"); err != nil {
				return err
			}
		case r.ContainerState == Started && ok:
			// It ended while berth was away: say how, as the liveness check does.
			if err := m.recordDead(ctx, r.Name, t, "while berth was not running"); err != nil {
				return err
			}
		case r.ContainerState == Started || r.ContainerState == Starting || r.ContainerState == PendingStart || r.ContainerState == PendingStop:
			if ok {
				m.removeTask(ctx, r.Name, t.ID)
			}
			if err := m.setContainer(ctx, r.Name, Stopped, "", "berth restarted while the service was "+r.ContainerState); err != nil {
				return err
			}
		case ok:
			m.removeTask(ctx, r.Name, t.ID)
		}
		if r.ImageState == ImagePendingValidation || r.ImageState == ImageValidating {
			m.wg.Add(1)
			go func(name string) { defer m.wg.Done(); m.build(m.ctx, name) }(r.Name)
		}
	}
	for name, t := range byName {
		m.removeTask(ctx, name, t.ID) // a service container no service owns
	}
	m.removeOrphanNetworks(ctx, rows)
	m.wg.Add(1)
	go m.loop()
	return nil
}

// removeTask removes a service's container; a failure is logged (the container is looked for
// again by the next start, which removes what holds the service's name).
func (m *Manager) removeTask(ctx context.Context, name string, id runtime.TaskID) {
	if err := m.rt.Remove(ctx, id); err != nil {
		m.log.Warn("remove a service container", "service", name, "container", string(id), "err", err)
	}
}

// removeOrphanNetworks removes this instance's service networks that no defined service owns
// (a deleted service's, or the network an older berth shared between all services).
func (m *Manager) removeOrphanNetworks(ctx context.Context, rows []store.ServiceRow) {
	n, ok := m.rt.(Networks)
	if !ok || m.cfg.Instance == "" {
		return // without an instance label, another berth's networks could match
	}
	names, err := n.ListNetworks(ctx, map[string]string{runtime.LabelManaged: "true", runtime.LabelKind: runtime.KindService, runtime.LabelInstance: m.cfg.Instance})
	if err != nil {
		m.log.Warn("list service networks", "err", err)
		return
	}
	owned := map[string]bool{}
	for _, r := range rows {
		owned[m.cfg.ServiceNetwork(r.Name)] = true
	}
	for _, name := range names {
		if owned[name] {
			continue
		}
		if err := n.RemoveNetwork(ctx, name); err != nil {
			m.log.Warn("remove a service network no service owns", "network", name, "err", err)
		}
	}
}

// network makes the service's own network (idempotent) and returns its name. Its members
// cannot reach one another either (icc off), should a second container ever join it.
func (m *Manager) network(ctx context.Context, name string) (string, error) {
	n, ok := m.rt.(Networks)
	if !ok {
		return "", fmt.Errorf("the %s runtime cannot give a service a network of its own", m.rt.Name())
	}
	netName := m.cfg.ServiceNetwork(name)
	if err := n.CreateNetwork(ctx, netName, m.labels(name), runtime.NetworkOptions{Isolated: true}); err != nil {
		return "", fmt.Errorf("create the network of service %s: %w", name, err)
	}
	return netName, nil
}

// removeNetwork removes the service's own network once no container of it runs.
func (m *Manager) removeNetwork(ctx context.Context, name string) {
	if n, ok := m.rt.(Networks); ok {
		if err := n.RemoveNetwork(ctx, m.cfg.ServiceNetwork(name)); err != nil {
			m.log.Warn("remove service network", "service", name, "err", err)
		}
	}
}

// Close stops the checks. Running services keep running: the next start re-adopts them.
func (m *Manager) Close() {
	m.cancel()
	m.wg.Wait()
}

var reName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ErrNameTaken: a service of that name belongs to another project (names are server-wide:
// they are the proxy's paths).
var ErrNameTaken = errors.New("service: name taken by another project")

// ErrPackageFixed: a service's package is chosen when it is first created; replacing the
// service cannot change it.
var ErrPackageFixed = errors.New("service: package is fixed")

// Create validates a service folder (a tar of it) and stores it in project; the image is
// built in the background (PENDING_VALIDATION → VALIDATING → READY | ERROR). warnings name
// what the engine cannot apply. A service of the same name is replaced only within its own
// project.
func (m *Manager) Create(ctx context.Context, project, name, pkg string, contextTar []byte) (Service, error) {
	if project == "" {
		project = store.DefaultProject
	}
	if !reName.MatchString(name) {
		return Service{}, &spec.ValidationError{Problems: []spec.Problem{{Field: "name", Message: fmt.Sprintf("%q: lowercase letters, digits and '-' (at most 63)", name)}}}
	}
	files, err := readTar(contextTar, "Dockerfile", "container.json")
	if err != nil {
		return Service{}, err
	}
	df, ok := files["Dockerfile"]
	if !ok {
		return Service{}, &spec.ValidationError{Problems: []spec.Problem{{Field: "Dockerfile", Message: "the folder has no Dockerfile"}}}
	}
	prev, found, pkg, err := m.owner(ctx, project, name, pkg)
	if err != nil {
		return Service{}, err
	}
	port, dfErr := spec.ExposedPort(df)
	cj, cjErr := spec.ParseContainerJSON(files["container.json"])
	if err := joinProblems(dfErr, checkPrefixLabel(df, dfErr), cjErr); err != nil {
		return Service{}, err
	}
	warnings, err := m.checkDefinition(ctx, project, pkg, cj)
	if err != nil {
		return Service{}, err
	}
	if err := os.MkdirAll(m.dir(name), 0o755); err != nil {
		return Service{}, err
	}
	// The folder is written beside the stored one and takes its place only once the record is
	// stored: a create refused by the store (another project's, racing) leaves it as it was.
	tmp, err := writeTemp(m.dir(name), "context-*.tar", contextTar)
	if err != nil {
		return Service{}, err
	}
	defer os.Remove(tmp) // gone by then once renamed
	cjJSON, _ := json.Marshal(cj)
	now := time.Now().UTC()
	row := store.ServiceRow{Name: name, Package: pkg, Project: project, Port: port, ContainerJSON: string(cjJSON),
		ImageState: ImagePendingValidation, ImageChangedAt: now, ContainerState: Stopped, ContainerChangedAt: now, CreatedAt: now}
	if found {
		row.ContainerState, row.ContainerID, row.ContainerChangedAt, row.CreatedAt = prev.ContainerState, prev.ContainerID, prev.ContainerChangedAt, prev.CreatedAt
	}
	if err := m.st.PutService(ctx, row); errors.Is(err, store.ErrConflict) {
		// Another project's create of the same name won the race since the check above.
		return Service{}, fmt.Errorf("service %s: %w", name, ErrNameTaken)
	} else if err != nil {
		return Service{}, err
	}
	if err := os.Rename(tmp, m.ContextPath(name)); err != nil {
		return Service{}, fmt.Errorf("store the folder of service %s: %w", name, err)
	}
	os.Remove(m.imageRefPath(name)) // built from its folder now, no longer pulled (pull.go)
	m.mu.Lock()
	m.known[name] = project
	m.mu.Unlock()
	if err := m.setImage(ctx, name, ImagePendingValidation, "", ""); err != nil {
		return Service{}, err
	}
	m.wg.Add(1)
	go func() { defer m.wg.Done(); m.build(m.ctx, name) }()
	svc, err := m.Get(ctx, name)
	svc.Warnings = warnings
	return svc, err
}

// writeTemp writes data to a new file in dir named after pattern (os.CreateTemp) and returns
// its path.
func writeTemp(dir, pattern string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// buildFailure says why a service's image could not be built, once (the reason is shown
// after "image build failed"): a base image that is not on the engine is named, since the
// engine's own message (a registry it could not reach) never names it.
func (m *Manager) buildFailure(ctx context.Context, contextTar []byte, err error) string {
	msg := err.Error()
	var be *runtime.BuildError
	if errors.As(err, &be) {
		msg = be.Message
	}
	files, ferr := readTar(contextTar, "Dockerfile")
	if ferr != nil {
		return msg
	}
	var missing []string
	for _, base := range spec.BaseImages(files["Dockerfile"], nil) {
		if _, ierr := m.rt.InspectImage(ctx, base); errors.Is(ierr, runtime.ErrNotFound) {
			missing = append(missing, base)
		}
	}
	if len(missing) == 0 {
		return msg
	}
	var sb strings.Builder
	for i, base := range missing {
		if i > 0 {
			sb.WriteString("; ")
		}
		fmt.Fprintf(&sb, "base image %s is not on this engine and cannot be pulled (%s): build it locally or use a berth base%s",
			base, pullReason(msg), berthBaseHint(base))
	}
	return sb.String()
}

// pullReason is the engine's reason for a failed pull, in a few words.
func pullReason(msg string) string {
	l := strings.ToLower(msg)
	switch {
	case strings.Contains(l, "registry-1.docker.io") || strings.Contains(l, "dial tcp") || strings.Contains(l, "no such host") ||
		strings.Contains(l, "i/o timeout") || strings.Contains(l, "connection refused") || strings.Contains(l, "network is unreachable"):
		return "no registry reachable"
	case strings.Contains(l, "pull access denied") || strings.Contains(l, "repository does not exist") || strings.Contains(l, "not found"):
		return "the registry has no such image"
	case strings.Contains(l, "unauthorized") || strings.Contains(l, "denied"):
		return "the registry refused access"
	}
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	return "the engine said: " + msg
}

// berthBaseHint names berth's own base image for the image's language, if any.
func berthBaseHint(base string) string {
	repo := base
	if i := strings.LastIndex(repo, "/"); i >= 0 {
		repo = repo[i+1:]
	}
	repo, _, _ = strings.Cut(repo, ":")
	repo, _, _ = strings.Cut(repo, "@")
	switch {
	case strings.HasPrefix(repo, "python"):
		return " (berth/python:3.11)"
	case repo == "r-base" || strings.HasPrefix(repo, "r-ver") || strings.HasPrefix(repo, "shiny"):
		return " (berth/r:4.2)"
	case repo == "debian" || repo == "ubuntu" || repo == "alpine" || repo == "busybox":
		return " (berth/shell:latest)"
	}
	return " (berth/python:3.11, berth/r:4.2, berth/shell:latest)"
}

// joinProblems reports the problems of the Dockerfile and of container.json together. One
// file's error is returned as it is; both become one list whose fields name their file.
func joinProblems(errs ...error) error {
	var all []error
	for _, err := range errs {
		if err != nil {
			all = append(all, err)
		}
	}
	if len(all) <= 1 {
		if len(all) == 1 {
			return all[0]
		}
		return nil
	}
	out := &spec.ValidationError{}
	for _, err := range all {
		var ve *spec.ValidationError
		if !errors.As(err, &ve) {
			return err
		}
		for _, p := range ve.Problems {
			if ve.File != "" {
				p.Field = ve.File + ": " + p.Field
				if p.Field == ve.File+": " {
					p.Field = ve.File
				}
			}
			out.Problems = append(out.Problems, p)
		}
	}
	return out
}

// applicable refuses what cannot run here (a GPU without a GPU runtime; a cpu above the
// engine's CPUs under StrictLimits) and warns about what the engine will not enforce as asked
// (a cpu above its CPUs is clamped; a storage size it has no quota for is dropped, said only
// when container.json gives one).
func (m *Manager) applicable(ctx context.Context, cj spec.ContainerJSON) ([]string, error) {
	c, err := m.capabilities(ctx)
	if err != nil {
		return nil, fmt.Errorf("check container.json against the engine: %w", err)
	}
	if c == nil {
		return nil, nil
	}
	refuse := func(field, msg string) error {
		return &spec.ValidationError{File: "container.json", Problems: []spec.Problem{{Field: field, Message: msg}}}
	}
	var warnings []string
	if cj.GPU > 0 && !c.GPU() {
		return nil, refuse("gpu", "cannot be applied: the engine has no GPU runtime")
	}
	if c.CPUs > 0 && cj.CPU > float64(c.CPUs) {
		if m.cfg.StrictLimits {
			return nil, refuse("cpu", fmt.Sprintf("%g cores asked, the engine has %d (this server refuses more than the engine has)", cj.CPU, c.CPUs))
		}
		warnings = append(warnings, fmt.Sprintf("cpu: %g cores asked, the engine has %d; the service gets %d", cj.CPU, c.CPUs, c.CPUs))
	}
	if cj.Given["storage"] && cj.Storage > 0 && !c.StorageQuota {
		warnings = append(warnings, fmt.Sprintf("storage: the %d GB root filesystem limit cannot be applied (the engine's storage %s has no per-container quota: %s); the service runs without it",
			cj.Storage, c.StorageDriver, c.StorageQuotaReason))
	}
	return warnings, nil
}

// limits are the service's limits as the engine can apply them: the cpu clamped to the
// engine's CPUs, the storage size only where a quota applies.
func (m *Manager) limits(ctx context.Context, cj spec.ContainerJSON) runtime.Limits {
	lim := runtime.Limits{NanoCPUs: int64(cj.CPU * 1e9), MemoryBytes: cj.Memory << 20, ShmSizeBytes: cj.ShmSize << 20, GPUs: cj.GPU}
	c, err := m.capabilities(ctx)
	if err != nil || c == nil {
		return lim
	}
	if c.CPUs > 0 && lim.NanoCPUs > int64(c.CPUs)*1e9 {
		lim.NanoCPUs = int64(c.CPUs) * 1e9
	}
	if c.StorageQuota {
		lim.StorageBytes = cj.Storage << 30
	}
	return lim
}

// readTar returns the named top-level files of a tar.
func readTar(b []byte, names ...string) (map[string][]byte, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, &spec.ValidationError{Problems: []spec.Problem{{Field: "context", Message: "not a tar archive: " + err.Error()}}}
		}
		n := strings.TrimPrefix(h.Name, "./")
		if want[n] && h.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(io.LimitReader(tr, 1<<20))
			if err != nil {
				return nil, err
			}
			out[n] = data
		}
	}
	return out, nil
}

// build builds and validates the image.
func (m *Manager) build(ctx context.Context, name string) {
	s := m.svc(name)
	s.mu.Lock()
	s.busy = true
	s.mu.Unlock()
	defer func() { s.mu.Lock(); s.busy = false; s.mu.Unlock() }()
	fail := func(reason string) {
		m.log.Warn("service image failed", "service", name, "reason", reason)
		m.setImage(context.WithoutCancel(ctx), name, ImageError, "", reason) // a failed write is logged
	}
	if err := m.setImage(ctx, name, ImageValidating, "", ""); err != nil {
		return // logged; the stuck check turns the image into ERROR
	}
	if ref, ok := m.pulledRef(name); ok {
		m.pull(ctx, name, ref, fail) // a published image: pulled, not built (pull.go)
		return
	}
	b, ok := m.rt.(runtime.Builder)
	if !ok {
		fail("the runtime cannot build images")
		return
	}
	tarBytes, err := os.ReadFile(filepath.Join(m.dir(name), "context.tar"))
	if err != nil {
		fail(err.Error())
		return
	}
	sum := sha256.Sum256(tarBytes)
	ref := "berth/svc-" + name + ":" + hex.EncodeToString(sum[:])[:12]
	logf, err := os.Create(filepath.Join(m.dir(name), "build.log"))
	if err != nil {
		fail(err.Error())
		return
	}
	defer logf.Close()
	// RUN steps never get the host network: bridge (or none, by the admin's choice).
	if err := CheckBuildNetwork(m.cfg.BuildNetwork); err != nil {
		fail(err.Error())
		return
	}
	img, err := b.BuildImage(ctx, runtime.BuildSpec{Context: bytes.NewReader(tarBytes), Tags: []string{ref}, Labels: m.labels(name), Network: m.cfg.BuildNetwork}, logf)
	if err != nil {
		fail(m.buildFailure(ctx, tarBytes, err))
		return
	}
	row, err := m.st.GetService(ctx, name)
	if err != nil {
		fail(err.Error())
		return
	}
	if hp := img.Labels[LabelHealthPath]; hp != "" && !strings.HasPrefix(hp, "/") {
		fail(fmt.Sprintf("label %s=%q must be a path starting with /", LabelHealthPath, hp))
		return
	}
	if err := checkImagePrefixLabel(img); err != nil {
		fail(err.Error())
		return
	}
	row.HealthPath = img.Labels[LabelHealthPath]
	row.ImageRef = ref
	row.ImageState = ImageReady
	if err := m.st.PutService(ctx, row); err != nil {
		fail(err.Error())
		return
	}
	if err := m.setImage(ctx, name, ImageReady, ref, ""); err != nil {
		fail(err.Error())
		return
	}
	fmt.Fprintf(logf, "ready: %s (port %d, health path %q)\n", ref, row.Port, row.HealthPath)
	var cj spec.ContainerJSON
	json.Unmarshal([]byte(row.ContainerJSON), &cj)
	if !cj.OnDemand {
		// Not on demand: it runs as soon as it is ready.
		if _, err := m.Ensure(ctx, name); err != nil {
			m.log.Warn("start service", "service", name, "err", err)
		}
	}
}

// Get returns a service with its transitions.
func (m *Manager) Get(ctx context.Context, name string) (Service, error) {
	r, err := m.st.GetService(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return Service{}, fmt.Errorf("service %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return Service{}, err
	}
	sv := m.view(r)
	sv.Events, _ = m.st.ServiceEvents(ctx, name)
	return sv, nil
}

func (m *Manager) view(r store.ServiceRow) Service {
	var cj spec.ContainerJSON
	json.Unmarshal([]byte(r.ContainerJSON), &cj)
	// Env values may hold secrets' references; the view shows the references, never values.
	s := m.svc(r.Name)
	la := time.Unix(0, s.lastActivity.Load()).UTC()
	return Service{Name: r.Name, Project: projectOf(r), Package: r.Package, Port: r.Port, HealthPath: r.HealthPath, Container: cj,
		Image: r.ImageRef, ImageState: r.ImageState, ImageReason: r.ImageReason, ImageChangedAt: r.ImageChangedAt,
		ContainerState: r.ContainerState, ContainerID: r.ContainerID, ContainerReason: r.ContainerReason,
		ContainerChangedAt: r.ContainerChangedAt, ActiveConnections: s.active.Load(), LastActivity: &la}
}

// List returns every service.
func (m *Manager) List(ctx context.Context) ([]Service, error) {
	rows, err := m.st.ListServices(ctx)
	if err != nil {
		return nil, err
	}
	out := []Service{}
	for _, r := range rows {
		out = append(out, m.view(r))
	}
	return out, nil
}

// Exists reports whether a service is defined (from memory).
func (m *Manager) Exists(ctx context.Context, name string) bool {
	_, ok := m.Project(name)
	return ok
}

// Project is the project a defined service belongs to, from memory (the proxy asks it on
// every request): false when no service has that name.
func (m *Manager) Project(name string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.known[name]
	return p, ok
}

// projectOf is a stored service's project; rows from before projects belong to the default.
func projectOf(r store.ServiceRow) string {
	if r.Project == "" {
		return store.DefaultProject
	}
	return r.Project
}

// Track marks a request or connection to a service as active until done is called.
func (m *Manager) Track(name string) (done func()) {
	s := m.svc(name)
	s.active.Add(1)
	s.lastActivity.Store(time.Now().UnixNano())
	return func() {
		s.lastActivity.Store(time.Now().UnixNano())
		s.active.Add(-1)
	}
}

// Addr is the running service's address, answered from memory ("" when not running).
func (m *Manager) Addr(name string) string {
	s := m.svc(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// StartError is a failed start: the reason and the container's last output.
type StartError struct {
	Reason  string
	LogTail string
}

func (e *StartError) Error() string { return e.Reason }

// Tail is the container's last output lines.
func (e *StartError) Tail() string { return e.LogTail }

// Ensure returns the address of a running service, starting it if needed. Concurrent callers
// wait on the same start.
func (m *Manager) Ensure(ctx context.Context, name string) (string, error) {
	s := m.svc(name)
	s.mu.Lock()
	// A stop in flight ends first: the request then starts the service again, and never
	// races the stop for the container's name.
	for s.stopping != nil {
		stopping := s.stopping
		s.mu.Unlock()
		select {
		case <-stopping:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		s.mu.Lock()
	}
	if s.addr != "" {
		a := s.addr
		s.mu.Unlock()
		return a, nil
	}
	ch := s.starting
	if ch == nil {
		ch = make(chan struct{})
		s.starting = ch
		s.busy = true
		go func() {
			t0 := time.Now()
			addr, task, err := m.start(m.ctx, name)
			if m.cfg.OnStart != nil {
				m.cfg.OnStart(name, time.Since(t0), err)
			}
			s.mu.Lock()
			s.addr, s.task, s.startErr = addr, task, err
			s.starting = nil
			s.busy = false
			s.mu.Unlock()
			close(ch)
		}()
	}
	s.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr == "" {
		if s.startErr != nil {
			return "", s.startErr
		}
		return "", &StartError{Reason: "the service stopped right after it started"}
	}
	return s.addr, nil
}

// start runs PENDING_START → STARTING → STARTED (or ERROR with the reason and log tail).
func (m *Manager) start(ctx context.Context, name string) (string, runtime.TaskID, error) {
	r, err := m.st.GetService(ctx, name)
	if err != nil {
		return "", "", err
	}
	// A request that arrives while the image builds waits for the build.
	for deadline := time.Now().Add(m.cfg.StuckTimeout); r.ImageState == ImagePendingValidation || r.ImageState == ImageValidating; {
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return "", "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if r, err = m.st.GetService(ctx, name); err != nil {
			return "", "", err
		}
	}
	if r.ImageState != ImageReady {
		reason := fmt.Sprintf("its image is %s", r.ImageState)
		if r.ImageReason != "" {
			reason += ": " + r.ImageReason
		}
		return "", "", &StartError{Reason: reason}
	}
	var cj spec.ContainerJSON
	json.Unmarshal([]byte(r.ContainerJSON), &cj)
	if err := m.setContainer(ctx, name, PendingStart, "", ""); err != nil {
		return "", "", err
	}
	// refuse records ERROR before anything runs; a failed write is part of the error.
	refuse := func(reason string) (string, runtime.TaskID, error) {
		err := m.setContainer(context.WithoutCancel(ctx), name, Error, "", reason)
		return "", "", startFailed(&StartError{Reason: reason}, err)
	}
	env, err := spec.ExpandEntities(cj.Env, r.Package, func(p, n string) (string, error) { return m.st.GetEntity(ctx, r.Project, p, n) })
	if err != nil {
		return refuse(err.Error())
	}
	if err := m.setContainer(ctx, name, Starting, "", ""); err != nil {
		return "", "", err
	}
	env[EnvBaseURL] = BaseURL(name)
	if err := m.notePrefixMode(ctx, name, r.ImageRef); err != nil {
		return refuse(err.Error())
	}
	lim := m.limits(ctx, cj)
	netName, err := m.network(ctx, name)
	if err != nil {
		return refuse(err.Error())
	}
	labels := m.labels(name)
	labels[LabelNetwork] = netName
	t := runtime.TaskSpec{
		Name: m.containerName(name), Image: r.ImageRef, Env: env, Labels: labels,
		Limits: lim, Network: netName, ExposedPorts: []int{r.Port},
		Tmpfs:    []runtime.Tmpfs{{Target: "/tmp", SizeBytes: 256 << 20}},
		Security: runtime.Security{DropAllCaps: true, NoNewPrivileges: true},
		// An init as PID 1 passes the stop signal on: an app that never handles SIGTERM
		// (PID 1 ignores it) stops at once instead of after the grace period.
		Init: true,
	}
	// A container of an earlier start may still hold the name.
	if old, _ := m.rt.List(ctx, m.own(name)); len(old) > 0 {
		for _, o := range old {
			m.removeTask(ctx, name, o.ID)
		}
	}
	failed := func(id runtime.TaskID, reason string) (string, runtime.TaskID, error) {
		tail := ""
		if id != "" {
			tail = m.logTail(ctx, id)
			m.removeTask(context.WithoutCancel(ctx), name, id)
		}
		err := m.setContainer(context.WithoutCancel(ctx), name, Error, "", reason)
		return "", "", startFailed(&StartError{Reason: reason, LogTail: tail}, err)
	}
	id, err := m.rt.Start(ctx, t)
	if err != nil {
		return failed(id, err.Error())
	}
	addr, err := m.rt.Address(ctx, id, r.Port)
	if err != nil {
		// A container that exits at once has no address: say how it ended instead.
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ex, werr := m.rt.Wait(wctx, id)
		cancel()
		if werr == nil {
			return failed(id, fmt.Sprintf("the container exited with code %d before it was ready", ex.Code))
		}
		return failed(id, err.Error())
	}
	if err := m.waitReady(ctx, id, addr, r.HealthPath, m.readyTimeout(cj)); err != nil {
		return failed(id, err.Error())
	}
	if err := m.setContainer(ctx, name, Started, string(id), ""); err != nil {
		// Not recorded as running: it does not run.
		m.removeTask(context.WithoutCancel(ctx), name, id)
		return "", "", err
	}
	m.svc(name).lastActivity.Store(time.Now().UnixNano())
	return addr, id, nil
}

// startFailed is a failed start, and the failed write of its ERROR state if that failed too.
func startFailed(se *StartError, writeErr error) error {
	if writeErr != nil {
		return errors.Join(se, writeErr)
	}
	return se
}

// readyTimeout bounds a start of the service: container.json's timeout_minutes, else the
// server's ReadyTimeout.
func (m *Manager) readyTimeout(cj spec.ContainerJSON) time.Duration {
	if cj.TimeoutMinutes != nil && *cj.TimeoutMinutes > 0 {
		return time.Duration(*cj.TimeoutMinutes * float64(time.Minute))
	}
	return m.cfg.ReadyTimeout
}

// waitReady polls until the port accepts and the health path (if any) answers below 500, for
// at most timeout.
func (m *Manager) waitReady(ctx context.Context, id runtime.TaskID, addr, health string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(m.cfg.PollInterval)
	defer tick.Stop()
	exited := make(chan error, 1)
	go func() {
		ex, err := m.rt.Wait(ctx, id)
		if err == nil {
			exited <- fmt.Errorf("the container exited with code %d before it was ready", ex.Code)
		}
	}()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			if health == "" {
				return nil
			}
			resp, err := client.Get("http://" + addr + health)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode < 500 {
					return nil
				}
			}
		}
		select {
		case err := <-exited:
			return err
		case <-ctx.Done():
			return fmt.Errorf("not ready within %s (port %s, health path %q)", timeout, addr, health)
		case <-tick.C:
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Stop stops a running service: PENDING_STOP → STOPPED, or SYSTEM_STOPPED when berth stopped
// it for idling.
func (m *Manager) Stop(ctx context.Context, name string, system bool) error {
	if !m.Exists(ctx, name) {
		return fmt.Errorf("service %s: %w", name, ErrNotFound)
	}
	s := m.svc(name)
	s.mu.Lock()
	// One start or stop at a time: wait for the one in flight.
	for s.starting != nil || s.stopping != nil {
		ch := s.starting
		if ch == nil {
			ch = s.stopping
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.mu.Lock()
	}
	task := s.task
	s.busy = true
	stopping := make(chan struct{})
	s.stopping = stopping // requests arriving from now on wait for the stop, then start again
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.busy, s.stopping = false, nil
		s.mu.Unlock()
		close(stopping)
	}()
	if err := m.setContainer(ctx, name, PendingStop, string(task), ""); err != nil {
		return err // nothing stopped: it still runs, and still answers
	}
	s.mu.Lock()
	s.addr, s.task = "", ""
	s.mu.Unlock()
	var old []runtime.TaskID
	if task != "" {
		old = append(old, task)
	} else if ts, err := m.rt.List(ctx, m.own(name)); err == nil {
		for _, t := range ts {
			old = append(old, t.ID)
		}
	}
	for _, id := range old {
		if err := m.rt.Stop(ctx, id, m.cfg.StopGrace); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			m.log.Warn("stop service", "service", name, "err", err)
		}
		if err := m.rt.Remove(ctx, id); err != nil {
			werr := m.setContainer(context.WithoutCancel(ctx), name, Error, "", "remove container: "+err.Error())
			return errors.Join(fmt.Errorf("stop service %s: %w", name, err), werr)
		}
	}
	state, reason := Stopped, ""
	if system {
		state, reason = SystemStopped, "idle"
	} else {
		// Stopped by a user: its network goes too (an idle stop keeps it for the next start).
		m.removeNetwork(ctx, name)
	}
	return m.setContainer(ctx, name, state, "", reason)
}

// Rebuild builds the image again from the stored folder (a running service keeps running on
// the old image until it is restarted).
func (m *Manager) Rebuild(ctx context.Context, name string) error {
	if !m.Exists(ctx, name) {
		return fmt.Errorf("service %s: %w", name, ErrNotFound)
	}
	if err := m.setImage(ctx, name, ImagePendingValidation, "", "rebuild"); err != nil {
		return err
	}
	m.wg.Add(1)
	go func() { defer m.wg.Done(); m.build(m.ctx, name) }()
	return nil
}

// Logs copies the running container's output.
func (m *Manager) Logs(ctx context.Context, name string, follow bool, stdout, stderr io.Writer) error {
	s := m.svc(name)
	s.mu.Lock()
	task := s.task
	s.mu.Unlock()
	if task == "" {
		return fmt.Errorf("service %s is not running", name)
	}
	return m.rt.Logs(ctx, task, follow, stdout, stderr)
}

// BuildLogPath and ContextPath are the stored build log and build context.
func (m *Manager) BuildLogPath(name string) string { return filepath.Join(m.dir(name), "build.log") }

// ContextPath is the stored build context (a tar).
func (m *Manager) ContextPath(name string) string { return filepath.Join(m.dir(name), "context.tar") }

// loop forgets services whose container died, stops idle services and turns stuck states
// into ERROR.
func (m *Manager) loop() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
			m.check(m.ctx)
		}
	}
}

func (m *Manager) check(ctx context.Context) {
	m.checkAlive(ctx)
	rows, err := m.st.ListServices(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("list services for the idle and stuck checks", "err", err)
		}
		return
	}
	now := time.Now()
	for _, r := range rows {
		s := m.svc(r.Name)
		s.mu.Lock()
		busy, running := s.busy, s.addr != ""
		s.mu.Unlock()
		var cj spec.ContainerJSON
		json.Unmarshal([]byte(r.ContainerJSON), &cj)
		if running && r.ContainerState == Started && cj.ShutdownTimeout != nil && s.active.Load() == 0 {
			idle := now.Sub(time.Unix(0, s.lastActivity.Load()))
			if idle > time.Duration(*cj.ShutdownTimeout*float64(time.Minute)) {
				m.log.Info("stopping an idle service", "service", r.Name, "idle", idle.Round(time.Second))
				if err := m.Stop(ctx, r.Name, true); err != nil {
					m.log.Warn("stop an idle service", "service", r.Name, "err", err)
				}
				continue
			}
		}
		if busy {
			continue
		}
		switch r.ContainerState {
		case PendingStart, Starting, PendingStop:
			if now.Sub(r.ContainerChangedAt) > m.cfg.StuckTimeout {
				m.setContainer(ctx, r.Name, Error, r.ContainerID, fmt.Sprintf("stuck in %s for more than %s", r.ContainerState, m.cfg.StuckTimeout)) // a failed write is logged; the next tick tries again
			}
		}
		switch r.ImageState {
		case ImagePendingValidation, ImageValidating:
			if now.Sub(r.ImageChangedAt) > m.cfg.StuckTimeout {
				m.setImage(ctx, r.Name, ImageError, "", fmt.Sprintf("stuck in %s for more than %s", r.ImageState, m.cfg.StuckTimeout)) // a failed write is logged; the next tick tries again
			}
		}
	}
}

// PutEntity stores an entity of a project's package for #{x.Package:Entity} expressions of
// that project's services.
func (m *Manager) PutEntity(ctx context.Context, project, pkg, name string, value json.RawMessage) error {
	if !json.Valid(value) {
		return &spec.ValidationError{Problems: []spec.Problem{{Field: "value", Message: "must be JSON"}}}
	}
	return m.st.PutEntity(ctx, project, pkg, name, string(value))
}

// owner finds the stored service of that name (found says whether there is one) and the
// package a create uses. The project and the package are the service's from its first
// creation: a replacement comes from the same project and keeps the package, so whoever
// replaces a service cannot point it at another package's entities.
func (m *Manager) owner(ctx context.Context, project, name, pkg string) (prev store.ServiceRow, found bool, _ string, err error) {
	prev, err = m.st.GetService(ctx, name)
	found = err == nil
	switch {
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return prev, false, "", fmt.Errorf("create service %s: %w", name, err)
	case found && projectOf(prev) != project:
		return prev, found, "", fmt.Errorf("service %s: %w", name, ErrNameTaken)
	case found && pkg != "" && pkg != prev.Package:
		return prev, found, "", fmt.Errorf("service %s belongs to package %s, not %s; delete the service to create it in another package: %w",
			name, prev.Package, pkg, ErrPackageFixed)
	case found:
		pkg = prev.Package
	case pkg == "":
		pkg = name
	}
	return prev, found, pkg, nil
}

// checkDefinition checks a container.json for a create: its env expressions may name only
// this package's entities of the project (checked now, resolved at start), and what the
// engine cannot apply comes back as warnings.
func (m *Manager) checkDefinition(ctx context.Context, project, pkg string, cj spec.ContainerJSON) ([]string, error) {
	if _, err := spec.ExpandEntities(cj.Env, pkg, func(p, n string) (string, error) {
		_, err := m.st.GetEntity(ctx, project, p, n)
		return "", err
	}); err != nil {
		return nil, err
	}
	warnings, err := m.applicable(ctx, cj)
	if err != nil {
		return nil, err
	}
	for _, w := range cj.Warnings {
		warnings = append(warnings, "container.json: "+w)
	}
	return warnings, nil
}
