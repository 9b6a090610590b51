package job_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/block"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/spec"
)

// TestSecretEnvIsStoredSealedAndOpenedForTheRun: the job's row keeps its secret env value
// sealed; the job still sees the value, and a job queued across a restart too.
func TestSecretEnvIsStoredSealedAndOpenedForTheRun(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	b := h.Block(`printf %s "$TOKEN" > /data/out/seen.txt`)
	b.Env = map[string]spec.EnvVar{"TOKEN": {Value: "s3cr3t-sealed-42", Secret: true}, "PLAIN": {Value: "p"}}
	j, out := h.Run(t, b)
	if j.State != job.StateSucceeded {
		t.Fatalf("%s/%s %s: %s", j.State, j.Reason, j.Message, out)
	}
	if seen, err := os.ReadFile(filepath.Join(j.OutputDir, "seen.txt")); err != nil || string(seen) != "s3cr3t-sealed-42" {
		t.Fatalf("the job saw %q (%v)", seen, err)
	}
	row, err := h.St.GetJob(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(row.Block, "s3cr3t") || !strings.Contains(row.Block, "sealed:v1:") {
		t.Fatalf("the stored block: %s", row.Block)
	}
	if got, _ := h.M.Get(ctx, j.ID); got.Block.Env["TOKEN"].Value == "s3cr3t-sealed-42" {
		t.Fatal("a job read back (not run) carries its opened secret")
	}

	// Queued before a restart: the next start opens it for its run.
	h.M.Close(ctx)
	sealed, err := h.St.SealBlockSecrets(`{"name":"q","language":"shell","image":"` + h.Img + `","code":"printf %s \"$TOKEN\" > /data/out/seen.txt","env":{"TOKEN":{"value":"queued-secret-7","secret":true}}}`)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	row = job.ToRow(job.Job{ID: job.NewID(), Name: "q", Owner: "tester", State: job.StateQueued, CreatedAt: now})
	row.Block = sealed
	code := `printf %s "$TOKEN" > /data/out/seen.txt`
	files, _ := json.Marshal(map[string][]byte{block.ScriptName(h.Block(code)): []byte(code)})
	row.Files = string(files)
	if err := h.St.InsertJob(ctx, row); err != nil {
		t.Fatal(err)
	}
	h.Start(t)
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	j, err = h.M.Wait(wctx, row.ID)
	if err != nil || j.State != job.StateSucceeded {
		t.Fatalf("queued job: %s/%s %s %v", j.State, j.Reason, j.Message, err)
	}
	if seen, err := os.ReadFile(filepath.Join(j.OutputDir, "seen.txt")); err != nil || string(seen) != "queued-secret-7" {
		t.Fatalf("the queued job saw %q (%v)", seen, err)
	}
}

// TestSecretEnvThatCannotBeOpenedFailsTheJob: a value sealed with another key (another data
// dir's) fails the job, which never runs with the sealed text as its value.
func TestSecretEnvThatCannotBeOpenedFailsTheJob(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	h.M.Close(ctx)
	now := time.Now().UTC()
	row := job.ToRow(job.Job{ID: job.NewID(), Name: "other-key", Owner: "tester", State: job.StateQueued, CreatedAt: now})
	row.Block = `{"name":"other-key","language":"shell","image":"` + h.Img + `","code":"echo ran","env":{"TOKEN":{"value":"sealed:v1:YmVydGgtc2VhbGVkLXYxOgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","secret":true}}}`
	files, _ := json.Marshal(map[string][]byte{block.ScriptName(h.Block("echo ran")): []byte("echo ran")})
	row.Files = string(files)
	if err := h.St.InsertJob(ctx, row); err != nil {
		t.Fatal(err)
	}
	h.Start(t)
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	j, err := h.M.Wait(wctx, row.ID)
	if err != nil || j.State != job.StateFailed || j.Reason != job.ReasonInternal || !strings.Contains(j.Message, "cannot be opened") {
		t.Fatalf("%s/%s %q %v", j.State, j.Reason, j.Message, err)
	}
	if out := h.Output(t, j.ID, ""); strings.Contains(out, "ran") {
		t.Fatalf("the job ran: %s", out)
	}
}
