package component

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/spec"
)

// TestProcessorRunsAsItself: a processor gets neither the caller's token the main component
// was given (forward_token) nor the main component's network: it has no network unless its
// own definition asks for one the admin allows.
func TestProcessorRunsAsItself(t *testing.T) {
	h, _ := componentHarness(t, func(c *testConfig) { c.AllowedNetworks = []string{"none", "bridge"} })
	ctx := context.Background()
	probe := func(who string) string {
		return "echo \"" + who + ": token=${KBC_TOKEN:-none} nets=$(ls /sys/class/net | tr '\\n' ,)\"\n"
	}
	main := h.componentImage(t, probe("main"))
	proc := h.componentImage(t, probe("proc"))
	netProc := h.componentImage(t, probe("netproc"))
	comp := spec.Component{ID: "fw-main", Image: main, ForwardToken: true, Network: "bridge"}
	cfg := spec.ComponentConfig{ID: "fw-main-1", Component: comp.ID}
	body, _ := json.Marshal(cfg)
	cb, _ := json.Marshal(comp)
	h.St.PutComponent(ctx, comp.ID, string(cb))
	h.St.PutConfig(ctx, cfg.ID, comp.ID, string(body))
	submit := func(cr *job.ComponentRun) (job.Job, error) {
		return h.M.Submit(ctx, job.Submission{Token: "berth_callertoken", Component: cr})
	}
	j, err := submit(&job.ComponentRun{Component: comp, Config: cfg, Action: "run",
		Before: []job.ProcessorRun{{Component: spec.Component{ID: "proc", Image: proc}}},
		After:  []job.ProcessorRun{{Component: spec.Component{ID: "netproc", Image: netProc, Network: "bridge"}}}})
	if err != nil {
		t.Fatal(err)
	}
	j, _ = h.M.Wait(ctx, j.ID)
	out := h.Output(t, j.ID, "stdout")
	if j.State != job.StateSucceeded {
		t.Fatalf("%s/%s %s\n%s", j.State, j.Reason, j.Message, out)
	}
	for _, want := range []string{
		"main: token=[hidden] nets=eth0,lo,", // the component itself gets what it asked for
		"proc: token=none nets=lo,",          // a processor gets neither
		"netproc: token=none nets=eth0,lo,",  // its own definition's network, allowed
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	// A processor asking for a network the admin does not allow is refused at submission.
	_, err = submit(&job.ComponentRun{Component: comp, Config: cfg, Action: "run",
		After: []job.ProcessorRun{{Component: spec.Component{ID: "wide", Image: netProc, Network: "other-net"}}}})
	var pe *job.PolicyError
	if !errors.As(err, &pe) || pe.Field != "processors.after[0].network" {
		t.Fatalf("a processor's network the admin does not allow: %v", err)
	}
}
