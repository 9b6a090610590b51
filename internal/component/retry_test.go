package component

import (
	"testing"
	"time"

	"github.com/berthproject/berth/internal/datadir"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/spec"
)

// TestConfigRetry: a configuration's retry runs its job again after an app_error; the second
// attempt's output is loaded, and the job records both attempts.
func TestConfigRetry(t *testing.T) {
	h, st := componentHarness(t, nil)
	img := h.componentImage(t, "if [ \"$BERTH_ATTEMPT\" = 1 ]; then echo 'flaky upstream' >&2; exit 2; fi\nprintf 'attempt\\n%s\\n' \"$BERTH_ATTEMPT\" > /data/out/tables/r.csv\n")
	cfg := spec.ComponentConfig{ID: "r-1", Component: "r",
		Retry: &spec.Retry{Max: 1, Backoff: spec.Duration(100 * time.Millisecond), On: []string{"app_error"}},
		Storage: datadir.StorageMapping{Output: datadir.OutputMapping{
			Tables: []datadir.OutputTable{{Source: "r.csv", Destination: "out.c-main.r"}}}}}
	j := h.runConfig(t, spec.Component{ID: "r", Image: img}, cfg)
	if j.State != job.StateSucceeded || len(j.Attempts) != 2 || j.Attempts[0].Reason != job.ReasonAppError {
		t.Fatalf("job %s (%s: %s), attempts %+v: want succeeded on the second attempt", j.State, j.Reason, j.Message, j.Attempts)
	}
	if got := exportCSV(t, st, "out.c-main.r"); got != "attempt\n2\n" {
		t.Fatalf("loaded table:\n%s", got)
	}
}
