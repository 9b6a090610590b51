package job

import (
	"path"
	"time"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/spec"
)

// Paths inside a job's container.
const (
	CodeDir = "/code" // the block's script files, read-only
	DataDir = "/data" // config.json, in/, out/; the only writable folder besides /tmp
)

// ScriptName is the file the block's code runs from: Block.Script, or main.<ext> for inline code.
func ScriptName(b spec.Block) string {
	if b.Script != "" {
		return b.Script
	}
	switch b.Language {
	case spec.LangPython:
		return "main.py"
	case spec.LangR:
		return "main.R"
	default:
		return "main.sh"
	}
}

// command is how the language runs a script.
func command(b spec.Block) []string {
	script := path.Join(CodeDir, ScriptName(b))
	switch b.Language {
	case spec.LangPython:
		return []string{"python3", "-u", script}
	case spec.LangR:
		return []string{"Rscript", "--vanilla", script}
	default:
		return []string{"sh", script}
	}
}

// TaskFor is the container a job runs in: the security defaults of DESIGN.md applied to the
// block. codeDir and dataDir are host folders mounted at /code (read-only) and /data. The
// block's own mounts are resolved by the caller (see Manager.Submit) and appended to the result.
func TaskFor(cfg Config, b spec.Block, imageRef, jobID, codeDir, dataDir string) runtime.TaskSpec {
	lim, _ := cfg.effectiveLimits(b.Limits)
	env := map[string]string{}
	for k, v := range b.EnvMap() {
		env[k] = v
	}
	env["BERTH_DATA_DIR"] = DataDir
	env["BERTH_JOB_ID"] = jobID
	env["BERTH_IN_CONTAINER"] = "1"
	env["HOME"] = "/tmp"
	env["PYTHONUNBUFFERED"] = "1"
	env["PYTHONDONTWRITEBYTECODE"] = "1"
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
	network := b.Network
	if network == "" {
		network = "none"
	}
	return runtime.TaskSpec{
		Image:      imageRef,
		Cmd:        command(b),
		Env:        env,
		WorkingDir: DataDir,
		Labels:     labels,
		Mounts: []runtime.Mount{
			{Source: codeDir, Target: CodeDir, ReadOnly: true},
			{Source: dataDir, Target: DataDir, ReadOnly: false},
		},
		Tmpfs: []runtime.Tmpfs{{Target: "/tmp", SizeBytes: cfg.TmpfsSize}},
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

// timeoutOf is the job's effective timeout.
func (c Config) timeoutOf(b spec.Block) time.Duration {
	lim, _ := c.effectiveLimits(b.Limits)
	return time.Duration(lim.Timeout)
}
