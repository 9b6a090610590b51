package block

import (
	"path"

	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/spec"
)

// CodeDir is the folder inside a block's container its script files are mounted at, read-only.
const CodeDir = "/code"

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

// TaskFor is the container a block runs in: the job's security defaults (job.Task) with the
// block's environment and its language's command. codeDir and dataDir are host folders mounted
// at /code (read-only) and /data. The block's own mounts are resolved by the caller (see
// Executor.Admit) and appended to the result.
func TaskFor(cfg job.Config, b spec.Block, imageRef, jobID, codeDir, dataDir string) runtime.TaskSpec {
	t := job.Task(cfg, b.Limits, b.Network, b.EnvMap(), imageRef, jobID)
	t.Cmd = command(b)
	t.WorkingDir = job.DataDir
	t.Mounts = []runtime.Mount{
		{Source: codeDir, Target: CodeDir, ReadOnly: true},
		{Source: dataDir, Target: job.DataDir, ReadOnly: false},
	}
	return t
}
