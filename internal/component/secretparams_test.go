package component

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/spec"
)

// TestHashParametersAreSealedAtRest: a configuration's "#" values (Keboola's encrypted
// parameters) are stored sealed, in the configuration and in its job; the component still
// reads them in plain text in config.json, and its output shows them hidden.
func TestHashParametersAreSealedAtRest(t *testing.T) {
	h, _ := componentHarness(t, nil)
	ctx := context.Background()
	const secret, nested = "hunter2-b9f3", "deep-7c1e"
	img := h.componentImage(t, `if grep -q '"#password": "`+secret+`"' /data/config.json && grep -q '"`+nested+`"' /data/config.json; then
  echo "plain in config.json"
fi
echo "leak: `+secret+`"
`)
	comp := spec.Component{ID: "sealp", Image: img}
	cfg := spec.ComponentConfig{ID: "sealp-cfg", Component: "sealp", Parameters: map[string]any{
		"user": "ann", "#password": secret, "db": map[string]any{"#keys": []any{nested}}}}
	if _, err := h.submitConfigBodies(ctx, comp, cfg); err != nil {
		t.Fatal(err)
	}
	// Run it as the API does: from the stored body.
	row, err := h.St.GetConfig(ctx, cfg.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(row.Body, secret) || strings.Contains(row.Body, nested) || !strings.Contains(row.Body, `"user":"ann"`) {
		t.Fatalf("the stored configuration is not sealed (or lost its plain values): %s", row.Body)
	}
	var stored spec.ComponentConfig
	if err := json.Unmarshal([]byte(row.Body), &stored); err != nil {
		t.Fatal(err)
	}
	j, err := h.M.Submit(ctx, job.Submission{Owner: "t", Component: &job.ComponentRun{Component: comp, Config: stored, ConfigVersion: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if j, err = h.M.Wait(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	out := h.Output(t, j.ID, "")
	if j.State != job.StateSucceeded || !strings.Contains(out, "plain in config.json") {
		t.Fatalf("%s/%s %s\n%s", j.State, j.Reason, j.Message, out)
	}
	if strings.Contains(out, secret) {
		t.Fatalf("the output shows the # value:\n%s", out)
	}
	var seq int
	var name, path string
	if err := h.St.DB.QueryRow(`PRAGMA database_list`).Scan(&seq, &name, &path); err != nil {
		t.Fatal(err)
	}
	if _, err := h.St.DB.Exec(`PRAGMA wal_checkpoint(FULL)`); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal"} {
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, []byte(nested)) {
			t.Fatalf("%s holds a # value in plain text", p)
		}
	}
}
