package cli_test

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"

	_ "modernc.org/sqlite"
)

// TestSecretsAreSealedAtRest: a job's secret env value, an entity and a configuration's
// credentials, stored through a real server, appear nowhere in the database's bytes (its file
// and its write-ahead log), nor in what the API returns; the job still sees its value. The key
// comes from BERTH_SECRET_KEY and is never written to the data dir or the database.
func TestSecretsAreSealedAtRest(t *testing.T) {
	eng := enginetest.Require(t)
	img := enginetest.Busybox(t, eng)
	key := make([]byte, 32)
	rand.Read(key)
	t.Setenv(auth.SecretKeyEnv, base64.StdEncoding.EncodeToString(key))
	dataDir := t.TempDir()
	s := startServer(t, dataDir, freePort(t))
	const (
		jobSecret    = "job-secret-5a7c1e"
		entitySecret = "entity-pw-93d0b2"
		credsSecret  = "creds-token-4f61aa"
	)

	// A job with a secret env value: it keeps what it sees as an output, and says it (hidden).
	code := "printf %s \"$TOKEN\" > /data/out/seen.txt\necho \"token=$TOKEN\"\n"
	specYAML := fmt.Sprintf("name: sealed\nlanguage: shell\nimage: %s\nenv:\n  TOKEN: {value: %s, secret: true}\n  PLAIN: plain-value-77\ncode: |\n%s",
		img, jobSecret, indent(code))
	var j jobView
	if c := s.call("POST", "/api/v1/jobs", map[string]any{"spec": specYAML, "filename": "block.yaml"}, &j); c != 201 {
		t.Fatalf("submit: %d", c)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for j.State != "succeeded" {
		if j.State == "failed" || j.State == "cancelled" || time.Now().After(deadline) {
			t.Fatalf("job %s/%s: %s", j.State, j.Reason, j.Message)
		}
		time.Sleep(100 * time.Millisecond)
		s.call("GET", "/api/v1/jobs/"+j.ID, nil, &j)
	}
	var out struct {
		OutputDir string `json:"output_dir"`
	}
	s.call("GET", "/api/v1/jobs/"+j.ID, nil, &out)
	if seen, err := os.ReadFile(filepath.Join(out.OutputDir, "seen.txt")); err != nil || string(seen) != jobSecret {
		t.Errorf("the job saw %q (%v), want its secret value", seen, err)
	}
	jobJSON := s.raw(t, "GET", "/api/v1/jobs/"+j.ID, "")
	if strings.Contains(jobJSON, jobSecret) || !strings.Contains(jobJSON, `"[hidden]"`) {
		t.Errorf("the job's JSON: %s", jobJSON)
	}
	if logs := s.raw(t, "GET", "/api/v1/jobs/"+j.ID+"/logs", ""); strings.Contains(logs, jobSecret) || !strings.Contains(logs, "token=[hidden]") {
		t.Errorf("the job's logs: %s", logs)
	}

	// An entity (write-only: there is no route to read it back).
	if c := s.rawCode(t, "PUT", "/api/v1/packages/pkg/entities/Db", `{"password": "`+entitySecret+`"}`); c != 204 {
		t.Fatalf("put entity: %d", c)
	}
	if c := s.rawCode(t, "GET", "/api/v1/packages/pkg/entities/Db", ""); c != 404 && c != 405 {
		t.Errorf("an entity can be read back: %d", c)
	}

	// A configuration's credentials.
	id := "e2e-sealed-" + enginetest.Unique(t)
	if c := s.call("POST", "/api/v1/components", map[string]any{"id": id, "image": img}, nil); c != 201 {
		t.Fatalf("register component: %d", c)
	}
	if c := s.call("POST", "/api/v1/configs", map[string]any{"id": "sealed-cfg", "component": id, "parameters": map[string]any{}}, nil); c != 201 {
		t.Fatalf("save config: %d", c)
	}
	if c := s.call("PUT", "/api/v1/configs/sealed-cfg/credentials", map[string]any{"#token": credsSecret}, nil); c != 200 {
		t.Fatalf("put credentials: %d", c)
	}
	if got := s.raw(t, "GET", "/api/v1/configs/sealed-cfg/credentials", ""); strings.Contains(got, credsSecret) || !strings.Contains(strings.ReplaceAll(got, " ", ""), `"stored":true`) {
		t.Errorf("credentials status: %s", got)
	}

	// The database's bytes, its log checkpointed first.
	dbPath := filepath.Join(dataDir, "berth.db")
	db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`PRAGMA wal_checkpoint(FULL)`); err != nil {
		t.Fatal(err)
	}
	var disk []byte
	for _, p := range []string{dbPath, dbPath + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		disk = append(disk, b...)
	}
	if !bytes.Contains(disk, []byte("plain-value-77")) {
		t.Fatal("the job's plain env value is not in the bytes read: the checks below would prove nothing")
	}
	for _, secret := range []string{jobSecret, entitySecret, credsSecret} {
		if i := bytes.Index(disk, []byte(secret)); i >= 0 {
			t.Errorf("%s is in the database's bytes: %q", secret, disk[max(0, i-300):min(len(disk), i+100)])
		}
	}
	for _, k := range [][]byte{key, []byte(base64.StdEncoding.EncodeToString(key))} {
		if bytes.Contains(disk, k) {
			t.Error("the key is in the database")
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, "secret.key")); !os.IsNotExist(err) {
		t.Errorf("a key from %s wrote a key file: %v", auth.SecretKeyEnv, err)
	}
	if strings.Contains(s.log.String(), jobSecret) || strings.Contains(s.log.String(), entitySecret) || strings.Contains(s.log.String(), credsSecret) {
		t.Errorf("a secret is in the server's log:\n%s", s.log.String())
	}
}

// TestServerRefusesABadSecretKey: a key of the wrong size in the environment, or a key file
// others may read, stops the start with an error that says what to fix.
func TestServerRefusesABadSecretKey(t *testing.T) {
	dataDir := t.TempDir()
	short := auth.SecretKeyEnv + "=" + base64.StdEncoding.EncodeToString(make([]byte, 16))
	r := berth(t, []string{short}, "server", "--data-dir", dataDir, "--listen", freePort(t))
	if r.code == 0 || !strings.Contains(r.stderr, auth.SecretKeyEnv) || !strings.Contains(r.stderr, "want 32") {
		t.Fatalf("a 16-byte key: %d %s", r.code, r.stderr)
	}
	keyFile := filepath.Join(dataDir, "secret.key")
	os.WriteFile(keyFile, make([]byte, 32), 0o644)
	os.Chmod(keyFile, 0o644)
	r = berth(t, []string{auth.SecretKeyEnv + "="}, "server", "--data-dir", dataDir, "--listen", freePort(t))
	if r.code == 0 || !strings.Contains(r.stderr, "chmod 600 "+keyFile) {
		t.Fatalf("a key file of mode 0644: %d %s", r.code, r.stderr)
	}
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n  ") + "\n"
}

// raw is the body of a request with the server's admin token.
func (s *server) raw(t *testing.T, method, path, body string) string {
	t.Helper()
	_, b := s.do(t, method, path, body)
	return b
}

func (s *server) rawCode(t *testing.T, method, path, body string) int {
	t.Helper()
	c, _ := s.do(t, method, path, body)
	return c
}

func (s *server) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+s.addr+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
