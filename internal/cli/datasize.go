package cli

import (
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/spec"
)

// addMaxDataSizeFlag adds --max-data-size (job.Config.MaxDataSize) to a command's flags.
func addMaxDataSizeFlag(fl *pflag.FlagSet, p *string) {
	fl.StringVar(p, "max-data-size", envOr("BERTH_MAX_DATA_SIZE", "10g"),
		"most a job may write to /data, and its cap when its spec sets no limits.disk (e.g. 500m, 10g; 0: no cap; env BERTH_MAX_DATA_SIZE)")
}

// parseMaxDataSize reads --max-data-size.
func parseMaxDataSize(s string) (int64, error) {
	n, err := spec.ParseByteSize(s)
	if err != nil {
		return 0, withCode(ExitUsage, fmt.Errorf("--max-data-size: %w", err))
	}
	return int64(n), nil
}

// sayDiskCap tells, at start-up, how the /data cap is held on this host.
func sayDiskCap(w io.Writer, dataDir string, max int64) {
	if max <= 0 {
		fmt.Fprintln(w, "berth: /data has no size cap (--max-data-size 0): a job can fill the host's disk")
		return
	}
	how, err := job.ProbeDiskEnforcement(dataDir)
	if err != nil {
		fmt.Fprintf(w, "berth: /data cap %s per job, held by a watchdog (%v)\n", humanBytes(max), err)
		return
	}
	fmt.Fprintf(w, "berth: /data cap %s per job: %s\n", humanBytes(max), how)
}
