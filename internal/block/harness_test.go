package block

import (
	"testing"

	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/job/jobtest"
)

// harness is a job manager on the real engine (jobtest) running blocks with this package's
// executor.
type harness struct{ *jobtest.Harness }

func newHarness(t *testing.T, mutate func(*job.Config)) *harness {
	t.Helper()
	return &harness{jobtest.New(t, mutate, func(*jobtest.Harness) map[string]job.Executor {
		return map[string]job.Executor{job.KindBlock: New()}
	})}
}
