package cli

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthproject/berth/internal/job"
)

// logWindowFlags are a logs command's --tail and --since.
type logWindowFlags struct {
	tail, since string
}

func (f *logWindowFlags) register(cmd *cobra.Command, counted string) {
	cmd.Flags().StringVar(&f.tail, "tail", "all", "print only the last N lines: "+counted)
	cmd.Flags().StringVar(&f.since, "since", "", "print only what was written since then: a duration back from now (10m, 1h30m) or an RFC 3339 time")
}

// query is the logs query of the flags ("" or "&tail=…&since=…"), checked first so bad
// input is a usage error naming the flag.
func (f *logWindowFlags) query() (string, error) {
	if _, field, err := job.ParseLogWindow(f.tail, f.since, time.Now()); err != nil {
		return "", withCode(ExitUsage, fmt.Errorf("--%s: %s", field, strings.TrimPrefix(err.Error(), field+": ")))
	}
	v := url.Values{}
	if f.tail != "" && f.tail != "all" {
		v.Set("tail", f.tail)
	}
	if f.since != "" {
		v.Set("since", f.since)
	}
	if len(v) == 0 {
		return "", nil
	}
	return "&" + v.Encode(), nil
}
