package job

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/berthproject/berth/internal/datadir"
	"github.com/berthproject/berth/internal/spec"
)

// Config is the job manager's configuration: the admin policy a block is held to.
type Config struct {
	// DataDir holds jobs' workspaces, outputs and logs (server --data-dir; `berth run` uses
	// <data-dir>/run).
	DataDir string
	// Workers is how many jobs run at once (server --workers, env BERTH_WORKERS; default 2).
	Workers int
	// ShareRoots are the folders mounts may come from (server --share-root). A mount outside
	// them is refused before any container starts. Empty: no mounts are allowed.
	ShareRoots []string
	// AllowedNetworks are the networks a block may ask for (server --allow-network; default
	// only "none"). "host" is never allowed.
	AllowedNetworks []string
	// DefaultLimits apply where a block sets none (cpu 1, memory 512 MiB, pids 256,
	// shm 64 MiB, timeout 1 h).
	DefaultLimits spec.Limits
	// MaxLimits cap what a block may ask for (cpu = the machine's cores, memory 8 GiB,
	// pids 4096, shm 1 GiB, gpu 0, timeout 24 h); more is refused at submit.
	MaxLimits spec.Limits
	// MaxDataSize caps what a job may write to its /data folder, in bytes: the cap when its
	// spec sets no limits.disk and the most a spec may ask for; more is refused at submit
	// (server and `berth run` --max-data-size, env BERTH_MAX_DATA_SIZE; default 10 GiB; 0
	// turns the cap off). A job past its cap is killed and ends failed/disk_limit.
	MaxDataSize int64
	// TmpfsSize is the size of the writable /tmp (default 64 MiB).
	TmpfsSize int64
	// LogCap is how many characters of output a job keeps: the last LogCap (default 1,000,000).
	LogCap int
	// User is the uid:gid the script runs as (default 1000:1000, never root).
	User string
	// Instance is the data dir's instance id (<data-dir>/instance, made once): it labels and
	// names this manager's containers, and reconcile touches only containers carrying it, so
	// several berths can share one engine. Required (default "server", for tests).
	Instance string
	// StopGrace is how long a cancelled or timed-out job gets to exit before it is killed
	// (default 2 s).
	StopGrace time.Duration
	// EngineRetry is how long a running job waits for a container engine that stopped
	// answering to answer again before the job fails (no flag; default 60 s).
	EngineRetry time.Duration
	// OnFinish, if set, is called once with each job that reaches a terminal state.
	OnFinish func(Job)
	// Reconcile makes Start fail jobs a crashed process left running and remove berth
	// containers no live job owns (default true; `berth run` turns it off while another run
	// shares the data dir).
	Reconcile bool
	// ExtraLabels are added to every container (server --label; tests set berth.test=1).
	ExtraLabels map[string]string
	// Executors run the jobs of each kind, by kind (KindBlock, KindComponent): the wiring
	// passes them in. A submission of a kind without one is refused.
	Executors map[string]Executor
	// OutputLimits cap what berth reads back from a job's /data/out: out/state.json (default
	// 1 MiB), each manifest (default 1 MiB) and how many files and folders it holds (default
	// 10,000). A zero field takes its default (datadir.DefaultLimits).
	OutputLimits datadir.Limits
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig(dataDir string) Config {
	return Config{
		DataDir:         dataDir,
		Workers:         2,
		AllowedNetworks: []string{"none"},
		DefaultLimits: spec.Limits{
			CPU: 1, Memory: 512 << 20, Pids: 256, ShmSize: 64 << 20,
			Timeout: spec.Duration(time.Hour),
		},
		MaxLimits: spec.Limits{
			CPU: float64(runtime.NumCPU()), Memory: 8 << 30, Pids: 4096, ShmSize: 1 << 30,
			GPU: 0, Timeout: spec.Duration(24 * time.Hour),
		},
		MaxDataSize:  10 << 30,
		TmpfsSize:    64 << 20,
		LogCap:       1_000_000,
		User:         "1000:1000",
		Instance:     "server",
		StopGrace:    2 * time.Second,
		Reconcile:    true,
		OutputLimits: datadir.DefaultLimits(),
		EngineRetry:  60 * time.Second,
	}
}

// PolicyError is a valid block the admin policy does not allow (a mount outside the sharing
// folder, a network not allowed, a limit above the maximum). Nothing ran.
type PolicyError struct {
	Field   string
	Message string
}

func (e *PolicyError) Error() string { return fmt.Sprintf("not allowed: %s: %s", e.Field, e.Message) }

// PolicyField lets the API name the field without importing this package's types.
func (e *PolicyError) PolicyField() string { return e.Field }

// EffectiveLimits fills the block's unset limits from the defaults and checks the maximums.
func (c Config) EffectiveLimits(l spec.Limits) (spec.Limits, error) {
	d, mx := c.DefaultLimits, c.MaxLimits
	if l.CPU == 0 {
		l.CPU = d.CPU
	}
	if l.Memory == 0 {
		l.Memory = d.Memory
	}
	if l.Pids == 0 {
		l.Pids = d.Pids
	}
	if l.ShmSize == 0 {
		l.ShmSize = d.ShmSize
	}
	if l.Timeout == 0 {
		l.Timeout = d.Timeout
	}
	if l.Disk == 0 {
		l.Disk = spec.ByteSize(c.MaxDataSize)
	}
	switch {
	case mx.CPU > 0 && l.CPU > mx.CPU:
		return l, &PolicyError{"limits.cpu", fmt.Sprintf("%.2f cores asked, at most %.2f allowed", l.CPU, mx.CPU)}
	case mx.Memory > 0 && l.Memory > mx.Memory:
		return l, &PolicyError{"limits.memory", fmt.Sprintf("%d bytes asked, at most %d allowed", l.Memory, mx.Memory)}
	case mx.Pids > 0 && l.Pids > mx.Pids:
		return l, &PolicyError{"limits.pids", fmt.Sprintf("%d asked, at most %d allowed", l.Pids, mx.Pids)}
	case mx.ShmSize > 0 && l.ShmSize > mx.ShmSize:
		return l, &PolicyError{"limits.shm_size", fmt.Sprintf("%d bytes asked, at most %d allowed", l.ShmSize, mx.ShmSize)}
	case l.GPU > mx.GPU:
		return l, &PolicyError{"limits.gpu", fmt.Sprintf("%d asked, at most %d allowed", l.GPU, mx.GPU)}
	case mx.Timeout > 0 && l.Timeout > mx.Timeout:
		return l, &PolicyError{"limits.timeout", fmt.Sprintf("%s asked, at most %s allowed",
			time.Duration(l.Timeout), time.Duration(mx.Timeout))}
	case c.MaxDataSize > 0 && int64(l.Disk) > c.MaxDataSize:
		return l, &PolicyError{"limits.disk", fmt.Sprintf("%s asked, at most %s allowed", humanBytes(int64(l.Disk)), humanBytes(c.MaxDataSize))}
	}
	return l, nil
}

// CheckNetwork refuses a network the policy does not allow.
func (c Config) CheckNetwork(n string) error {
	if n == "" || n == "none" {
		return nil
	}
	if n == "host" {
		return &PolicyError{"network", "the host network is never given to a block"}
	}
	for _, a := range c.AllowedNetworks {
		if a == n {
			return nil
		}
	}
	return &PolicyError{"network", fmt.Sprintf("%q is not allowed here (allowed: %s)", n, strings.Join(c.allowedNetworks(), ", "))}
}

func (c Config) allowedNetworks() []string {
	out := []string{"none"}
	for _, a := range c.AllowedNetworks {
		if a != "none" {
			out = append(out, a)
		}
	}
	return out
}

// ResolveMount turns a block mount's source into an absolute host path inside a share root,
// following symlinks first so a link cannot point out of the root.
func (c Config) ResolveMount(baseDir string, i int, m spec.Mount) (string, error) {
	field := fmt.Sprintf("mounts[%d].source", i)
	if len(c.ShareRoots) == 0 {
		return "", &PolicyError{field, "mounts are not allowed: no sharing folder is configured"}
	}
	src := m.Source
	if !filepath.IsAbs(src) {
		if baseDir == "" {
			return "", &PolicyError{field, "a relative source needs a base folder"}
		}
		src = filepath.Join(baseDir, src)
	}
	real, err := filepath.EvalSymlinks(filepath.Clean(src))
	if err != nil {
		if os.IsNotExist(err) {
			return "", &PolicyError{field, fmt.Sprintf("%s does not exist", src)}
		}
		return "", &PolicyError{field, fmt.Sprintf("%s: %v", src, err)}
	}
	for _, root := range c.ShareRoots {
		r, err := filepath.EvalSymlinks(root)
		if err != nil {
			continue
		}
		if real == r || strings.HasPrefix(real, r+string(filepath.Separator)) {
			if isEngineSocket(real) {
				break
			}
			return real, nil
		}
	}
	return "", &PolicyError{field, fmt.Sprintf("%s is outside the sharing folder (allowed: %s)", src, strings.Join(c.ShareRoots, ", "))}
}

// isEngineSocket reports whether a path is a container engine's control socket, which is
// never given to a block even from inside a sharing folder.
func isEngineSocket(p string) bool {
	fi, err := os.Stat(p)
	if err == nil && fi.Mode()&os.ModeSocket != 0 {
		return true
	}
	return filepath.Base(p) == "docker.sock"
}
