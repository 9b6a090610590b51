package job

import (
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/spec"
)

// DataDir is the folder inside a job's container its data is mounted at: config.json, in/,
// out/; the only writable folder besides /tmp.
const DataDir = "/data"

// Task is the container of a job with the security defaults of DESIGN.md: limits (unset ones
// from the policy's defaults), network (none when ""), berth's labels, berth's environment over
// env, a writable /tmp, a read-only root, no capabilities, the policy's non-root user. The
// executor adds the command and the mounts.
func Task(cfg Config, limits spec.Limits, network string, env map[string]string, imageRef, jobID string) runtime.TaskSpec {
	lim, _ := cfg.EffectiveLimits(limits)
	e := map[string]string{}
	for k, v := range env {
		e[k] = v
	}
	e["BERTH_DATA_DIR"] = DataDir
	e["BERTH_JOB_ID"] = jobID
	e["BERTH_IN_CONTAINER"] = "1"
	e["HOME"] = "/tmp"
	e["PYTHONUNBUFFERED"] = "1"
	e["PYTHONDONTWRITEBYTECODE"] = "1"
	labels := map[string]string{}
	for k, v := range cfg.ExtraLabels {
		labels[k] = v
	}
	labels[runtime.LabelManaged] = "true"
	labels[runtime.LabelKind] = runtime.KindJob
	labels[runtime.LabelJob] = jobID
	if cfg.Instance != "" {
		labels[runtime.LabelInstance] = cfg.Instance
	}
	if network == "" {
		network = "none"
	}
	return runtime.TaskSpec{
		Image:  imageRef,
		Env:    e,
		Labels: labels,
		Tmpfs:  []runtime.Tmpfs{{Target: "/tmp", SizeBytes: cfg.TmpfsSize}},
		Limits: runtime.Limits{
			NanoCPUs:     int64(lim.CPU * 1e9),
			MemoryBytes:  int64(lim.Memory),
			PidsLimit:    lim.Pids,
			ShmSizeBytes: int64(lim.ShmSize),
			GPUs:         lim.GPU,
		},
		Security: runtime.Security{
			User:            cfg.User,
			ReadOnlyRootfs:  true,
			DropAllCaps:     true,
			NoNewPrivileges: true,
		},
		Network: network,
		// An init as PID 1 passes berth's stop signal on to the script (a script that never
		// handles SIGTERM ignores it as PID 1) and reaps what it leaves behind.
		Init: true,
	}
}
