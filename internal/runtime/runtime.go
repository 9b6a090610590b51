// Package runtime is the one seam between berth and a container orchestrator.
//
// Everything berth runs goes through Runtime: the job pipeline and the service manager speak
// only this package's types, never an engine SDK. A backend lives in a sibling folder
// (runtime/docker today) and converts TaskSpec into its own API calls.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Sentinel errors every backend classifies engine failures into.
var (
	// ErrNotFound: the image or task does not exist.
	ErrNotFound = errors.New("runtime: not found")
	// ErrConflict: the name is taken, or the object is in a state that forbids the call.
	ErrConflict = errors.New("runtime: conflict")
	// ErrUnavailable: the engine did not answer; the call may be retried.
	ErrUnavailable = errors.New("runtime: engine unavailable")
)

// Label keys berth puts on everything it creates. Labels are how berth finds its own
// containers and images after a crash, and how it never touches anything else.
const (
	LabelManaged  = "berth.managed"   // always "true"
	LabelKind     = "berth.kind"      // job | service | build | base | generated
	LabelJob      = "berth.job"       // job id
	LabelService  = "berth.service"   // service name
	LabelSpecHash = "berth.spec-hash" // generated image content hash
	LabelRecipe   = "berth.recipe-hash"
	LabelInstance = "berth.instance" // which berth data dir owns it (several berths on one engine)
	LabelTest     = "berth.test"     // set by tests so a crashed run can be cleaned up
)

// Kinds for LabelKind.
const (
	KindJob       = "job"
	KindService   = "service"
	KindBuild     = "build"
	KindBase      = "base"
	KindGenerated = "generated"
	KindComponent = "component" // a component's image built from a folder
	KindProbe     = "probe"     // a throwaway object made to probe what the engine can do
)

// TaskID identifies a task (a container, a pod, a swarm service) within one runtime.
type TaskID string

// Runtime runs tasks on one orchestrator.
//
// Lifecycle of a task: Start → (Logs, Wait, in any order, concurrently) → Stop (optional) → Remove.
// A task is not removed automatically when it exits: Wait and Logs must still answer after
// exit, until Remove. Remove must succeed even if Start failed half-way or never ran (removing
// an absent task returns nil). All methods are safe for concurrent use, and every method that
// blocks honours ctx.
type Runtime interface {
	// Name is the backend's name, e.g. "docker".
	Name() string

	// InspectImage returns the image a reference (tag or ID) names, or ErrNotFound.
	InspectImage(ctx context.Context, ref string) (Image, error)
	// ListImages returns the images that carry every given label (value "" matches any value).
	ListImages(ctx context.Context, labels map[string]string) ([]Image, error)
	// RemoveImage removes an image by ID or tag. Removing an absent image returns nil.
	RemoveImage(ctx context.Context, ref string) error

	// Start creates and starts a task. On error nothing is left running; the caller may still
	// call Remove with the returned ID (which may be empty).
	Start(ctx context.Context, t TaskSpec) (TaskID, error)
	// Wait blocks until the task exits and returns how it ended. Calling Wait on a task that
	// already exited returns at once.
	Wait(ctx context.Context, id TaskID) (Exit, error)
	// Logs copies the task's output into stdout and stderr, kept apart, until the task's output
	// ends (follow) or what exists so far has been copied (!follow).
	Logs(ctx context.Context, id TaskID, follow bool, stdout, stderr io.Writer) error
	// Stop asks the task to stop, and kills it after grace. Stopping a stopped task is a no-op.
	Stop(ctx context.Context, id TaskID, grace time.Duration) error
	// Remove removes the task and its anonymous volumes, killing it if it still runs.
	Remove(ctx context.Context, id TaskID) error
	// List returns the tasks that carry every given label, running or not.
	List(ctx context.Context, labels map[string]string) ([]TaskStatus, error)
	// Address returns host:port at which the task's port answers on the network berth shares
	// with it (never a published host port).
	Address(ctx context.Context, id TaskID, port int) (string, error)
}

// Builder is implemented by a runtime that can build images (Docker does).
// Callers check: if b, ok := rt.(runtime.Builder); ok { ... }.
type Builder interface {
	// BuildImage builds an image from a build context and writes the build's human-readable
	// output to progress as it happens. On a failed build the error is a *BuildError.
	BuildImage(ctx context.Context, b BuildSpec, progress io.Writer) (Image, error)
	// ImportImage makes an image from a root filesystem tarball (docker import).
	ImportImage(ctx context.Context, rootfs io.Reader, ref string, changes []string, labels map[string]string) (Image, error)
}

// LogTailer is implemented by a runtime that can return only the end of a task's output
// without following it. A follower may end before it has read everything (Docker's json-file
// follower stops early when the log was rotated under it); the tail lets the caller make
// sure the output it keeps ends with the task's last line.
// Callers check: if lt, ok := rt.(runtime.LogTailer); ok { ... }.
type LogTailer interface {
	// LogsTail copies the last lines entries of the task's output (stdout and stderr counted
	// together, in order) into stdout and stderr, kept apart, and returns.
	LogsTail(ctx context.Context, id TaskID, lines int, stdout, stderr io.Writer) error
}

// Image is an image as the runtime sees it.
type Image struct {
	ID      string
	Tags    []string
	Labels  map[string]string
	Size    int64
	Created time.Time
	// RepoDigests are the registry references by digest (host/repo@sha256:…) the image is
	// known by: set once it was pushed or pulled.
	RepoDigests []string
	// ExposedPorts are the image's EXPOSE entries ("8080/tcp").
	ExposedPorts []string
}

// RegistryAuth is how a runtime authenticates to an image registry: a user name and password
// (the engine runs the registry's token flow with them), or a bearer token the registry
// accepts as it is (RegistryToken).
type RegistryAuth struct {
	Username, Password string
	RegistryToken      string
	ServerAddress      string // the registry's host:port
}

// Distributor is implemented by a runtime that can move images to and from a registry
// (Docker does). Callers check: if d, ok := rt.(runtime.Distributor); ok { ... }.
type Distributor interface {
	// PullImage pulls ref, writing progress lines to progress, and returns the image.
	PullImage(ctx context.Context, ref string, auth RegistryAuth, progress io.Writer) (Image, error)
	// PushImage pushes ref, writing progress lines to progress, and returns the digest the
	// registry gave the manifest (sha256:…).
	PushImage(ctx context.Context, ref string, auth RegistryAuth, progress io.Writer) (string, error)
	// TagImage gives the image src the reference dst.
	TagImage(ctx context.Context, src, dst string) error
}

// TaskSpec is everything needed to run one task, in backend-neutral terms.
type TaskSpec struct {
	Name       string            // optional; backends may prefix or ignore
	Image      string            // reference or ID; must exist locally
	Entrypoint []string          // nil keeps the image's
	Cmd        []string          // nil keeps the image's
	Env        map[string]string // environment
	WorkingDir string
	Labels     map[string]string
	Mounts     []Mount
	Tmpfs      []Tmpfs
	Limits     Limits
	Security   Security
	// Network is "none", "bridge", or the name of a network the runtime owns.
	Network string
	// NetworkAliases are DNS names of the task on Network.
	NetworkAliases []string
	// ExposedPorts are container ports reachable through Address (never published on the host).
	ExposedPorts []int
	// Init runs a small init process as the task's PID 1 (Docker's --init): it forwards
	// signals to the task's command and reaps its zombies, so a command that never handles
	// SIGTERM (PID 1 ignores it) still stops at once. A backend that cannot refuses the task
	// with an error saying so (see Capabilities.Init).
	Init bool
}

// Mount binds a host path into the task.
type Mount struct {
	Source   string // absolute host path
	Target   string // absolute path inside the task
	ReadOnly bool
}

// Tmpfs is an in-memory writable folder.
type Tmpfs struct {
	Target    string
	SizeBytes int64 // 0: backend default
	Options   string
}

// Limits are resource limits; a zero field means "no limit".
type Limits struct {
	NanoCPUs     int64 // 1e9 = one core
	MemoryBytes  int64 // memory; swap is set equal so no swap is used
	PidsLimit    int64
	ShmSizeBytes int64
	GPUs         int   // number of GPUs; backends without GPU support refuse > 0
	StorageBytes int64 // root filesystem size, where the storage driver supports a quota
}

// Security is the task's confinement. Zero value is NOT safe: callers build it from the policy
// (see job.DefaultSecurity); backends apply exactly what it says.
type Security struct {
	User            string // "uid:gid" or a name; "" keeps the image's
	ReadOnlyRootfs  bool
	DropAllCaps     bool
	CapAdd          []string
	NoNewPrivileges bool
}

// Exit is how a task ended.
type Exit struct {
	Code       int
	OOMKilled  bool
	StartedAt  time.Time
	FinishedAt time.Time
	Error      string // engine-reported error, if any
}

// TaskStatus is a task as List reports it.
type TaskStatus struct {
	ID      TaskID
	Name    string
	Image   string
	Labels  map[string]string
	State   string // created | running | exited | ...
	Running bool
	Created time.Time
}

// NetworkOptions shape a network berth creates for its own tasks (a backend that can create
// networks takes them; see service.Networks).
type NetworkOptions struct {
	// Isolated: members of the network cannot open connections to one another; only the host
	// reaches them (Docker: com.docker.network.bridge.enable_icc=false). Tasks on two different
	// networks never reach each other either way.
	Isolated bool
}

// BuildSpec describes an image build.
type BuildSpec struct {
	// Context is a tar stream of the build context; ContextDir is used when Context is nil.
	Context    io.Reader
	ContextDir string
	Dockerfile string // path inside the context; default "Dockerfile"
	Tags       []string
	Labels     map[string]string
	BuildArgs  map[string]string
	// Network for RUN steps: "" (engine default), "bridge", "none", or "host" (reach a package
	// index on the host's loopback; never used for what a user's Dockerfile runs).
	Network string
	NoCache bool
}

// LogWindower is implemented by a runtime that can start a task's output at a point (logs
// --tail, --since). Callers check: if lw, ok := rt.(runtime.LogWindower); ok { ... }.
type LogWindower interface {
	// LogsWindow copies the task's output written since w.Since (zero: from the start), only
	// its last w.Tail entries (< 0: all), into stdout and stderr; with w.Follow it keeps
	// copying until the task ends or ctx ends.
	LogsWindow(ctx context.Context, id TaskID, w LogWindow, stdout, stderr io.Writer) error
}

// LogWindow is the part of a task's output LogsWindow copies.
type LogWindow struct {
	Follow bool
	Tail   int
	Since  time.Time
}

// BuildError is a failed image build; Log holds the tail of the build output.
type BuildError struct {
	Message string
	Log     string
}

func (e *BuildError) Error() string { return "image build failed: " + e.Message }

// Capabilities is what an engine can enforce, probed once at start-up (see Prober) and passed
// down as a value. A limit the engine cannot enforce is either refused (a GPU without a GPU
// runtime), clamped with a warning (more CPUs than the engine has), or dropped with a warning
// (a root filesystem size without quota support): never an error at the first request.
type Capabilities struct {
	// Engine is the backend and its version, e.g. "docker 20.10.24".
	Engine string
	// StorageDriver is the engine's storage driver (overlay2, fuse-overlayfs, ...) and
	// BackingFilesystem the filesystem under it (extfs, xfs, ...; "" when unknown).
	StorageDriver     string
	BackingFilesystem string
	// StorageQuota: a per-task root filesystem size (Limits.StorageBytes) really applies; a
	// probe task was created with one. When false, StorageQuotaReason is the engine's answer.
	StorageQuota       bool
	StorageQuotaReason string
	// CgroupVersion is "1" or "2" ("" when the engine does not say).
	CgroupVersion string
	// CPUs and MemoryBytes are what the engine's host has.
	CPUs        int
	MemoryBytes int64
	// GPURuntimes are the engine's runtimes that give GPUs (e.g. nvidia); none means a task
	// asking for a GPU cannot run.
	GPURuntimes []string
	// Init: the engine can run a task under an init process (TaskSpec.Init); InitBinary
	// names it (Docker: its init-path, docker-init by default).
	Init       bool
	InitBinary string
	// What the kernel lets the engine limit; false means such a limit is not applied.
	MemoryLimit bool
	SwapLimit   bool
	CPUQuota    bool
	PidsLimit   bool
}

// GPU says whether a task may ask for GPUs.
func (c Capabilities) GPU() bool { return len(c.GPURuntimes) > 0 }

// String is one plain line of what the engine can enforce, e.g. "docker 20.10.24, cgroup v1,
// storage fuse-overlayfs on extfs (no per-container disk quota), 2 CPUs, 23.5 GiB, no GPU runtime".
func (c Capabilities) String() string {
	var parts []string
	if c.Engine != "" {
		parts = append(parts, c.Engine)
	}
	if c.CgroupVersion != "" {
		parts = append(parts, "cgroup v"+c.CgroupVersion)
	} else {
		parts = append(parts, "cgroup version unknown")
	}
	st := "storage " + c.StorageDriver
	if c.BackingFilesystem != "" {
		st += " on " + c.BackingFilesystem
	}
	if c.StorageQuota {
		st += " (per-container disk quota)"
	} else {
		st += " (no per-container disk quota)"
	}
	parts = append(parts, st)
	cpus := fmt.Sprintf("%d CPUs", c.CPUs)
	if c.CPUs == 1 {
		cpus = "1 CPU"
	}
	parts = append(parts, cpus, fmt.Sprintf("%.1f GiB", float64(c.MemoryBytes)/(1<<30)))
	if c.GPU() {
		parts = append(parts, "GPU runtime "+strings.Join(c.GPURuntimes, ", "))
	} else {
		parts = append(parts, "no GPU runtime")
	}
	for _, l := range []struct {
		ok   bool
		what string
	}{{c.MemoryLimit, "no memory limit"}, {c.SwapLimit, "no swap limit"}, {c.CPUQuota, "no CPU quota"}, {c.PidsLimit, "no pids limit"}, {c.Init, "no init process"}} {
		if !l.ok {
			parts = append(parts, l.what)
		}
	}
	return strings.Join(parts, ", ")
}

// Prober is implemented by a runtime that can say what it enforces (Docker does). The probe
// runs once, at start-up; a failed probe returns its error and is tried again by the next
// call, never remembered.
type Prober interface {
	Capabilities(ctx context.Context) (Capabilities, error)
}
