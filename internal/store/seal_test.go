package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/store"
)

func newSealer(t *testing.T) *auth.Sealer {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	s, err := auth.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dbBytes is what the database keeps on disk: its file and its write-ahead log, after a
// checkpoint.
func dbBytes(t *testing.T, st *store.Store, path string) []byte {
	t.Helper()
	if _, err := st.DB.Exec(`PRAGMA wal_checkpoint(FULL)`); err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

const secretBlock = `{"name":"b","language":"shell","code":"true","env":{"PLAIN":"visible-1","TOKEN":{"value":"tok-plain-4711","secret":true}}}`

func TestSecretsAreNotStoredWithoutASealer(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.PutEntity(ctx, "", "pkg", "Db", `{"password":"pw"}`); !errors.Is(err, store.ErrNoSealer) {
		t.Fatalf("an entity stored without a sealer: %v", err)
	}
	if _, err := st.SealBlockSecrets(secretBlock); !errors.Is(err, store.ErrNoSealer) {
		t.Fatalf("a secret env value kept without a sealer: %v", err)
	}
	plain := `{"name":"b","language":"shell","code":"true","env":{"A":"b"}}`
	if out, err := st.SealBlockSecrets(plain); err != nil || out != plain {
		t.Fatalf("a block without secrets needs no sealer: %q %v", out, err)
	}
}

func TestEntitiesAndBlockSecretsAreSealed(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "b.db")
	st, err := store.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.SetSealer(newSealer(t))

	if err := st.PutEntity(ctx, "", "pkg", "Db", `{"password":"ent-pw-9876"}`); err != nil {
		t.Fatal(err)
	}
	if v, err := st.GetEntity(ctx, "", "pkg", "Db"); err != nil || v != `{"password":"ent-pw-9876"}` {
		t.Fatalf("get entity: %q %v", v, err)
	}
	var raw string
	st.DB.QueryRow(`SELECT value FROM entities`).Scan(&raw)
	if !store.IsSealed(raw) {
		t.Fatalf("entity column: %q", raw)
	}

	sealed, err := st.SealBlockSecrets(secretBlock)
	if err != nil || strings.Contains(sealed, "tok-plain-4711") || !strings.Contains(sealed, "visible-1") {
		t.Fatalf("sealed block: %s %v", sealed, err)
	}
	if again, err := st.SealBlockSecrets(sealed); err != nil || again != sealed {
		t.Fatalf("sealing twice changed the block: %s %v", again, err)
	}
	opened, err := st.OpenBlockSecrets(sealed)
	if err != nil || !strings.Contains(opened, `"value":"tok-plain-4711"`) {
		t.Fatalf("opened block: %s %v", opened, err)
	}

	// Another key opens nothing.
	other, _ := store.OpenSQLite(ctx, path)
	defer other.Close()
	other.SetSealer(newSealer(t))
	if _, err := other.GetEntity(ctx, "", "pkg", "Db"); err == nil {
		t.Fatal("an entity opened with another key")
	}
	if _, err := other.OpenBlockSecrets(sealed); err == nil {
		t.Fatal("a block's secret opened with another key")
	}
}

// TestPlainSecretsOfAnOlderBerthAreSealedAtStart: rows written in plain text before secrets were
// sealed are sealed once, and their plain text is left neither in the database file nor in its
// log.
func TestPlainSecretsOfAnOlderBerthAreSealedAtStart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "b.db")
	st, err := store.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// As an older berth stored them.
	row := store.JobRow{ID: "jold", Name: "b", Owner: "ann", State: "succeeded", Block: secretBlock, CreatedAt: time.Now().UTC()}
	if err := st.InsertJob(ctx, row); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB.Exec(`INSERT INTO entities (project, package, name, value) VALUES ('default', 'pkg', 'Db', '{"password":"ent-pw-9876"}')`); err != nil {
		t.Fatal(err)
	}
	cfgBody := `{"id":"c1","component":"x","parameters":{"user":"u","#password":"cfg-pw-5150"}}`
	if _, err := st.DB.Exec(`INSERT INTO components (id, body, created_at) VALUES ('x', '{"id":"x","image":"i"}', '2026-01-01T00:00:00Z')`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO configs (id, component_id, version, body, updated_at) VALUES ('c1', 'x', 1, ?, '2026-01-01T00:00:00Z')`,
		`INSERT INTO config_versions (config_id, version, body, created_at) VALUES ('c1', 1, ?, '2026-01-01T00:00:00Z')`,
	} {
		if _, err := st.DB.Exec(q, cfgBody); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Contains(dbBytes(t, st, path), []byte("tok-plain-4711")) || !bytes.Contains(dbBytes(t, st, path), []byte("cfg-pw-5150")) {
		t.Fatal("the test's plain rows are not on disk: the check below would prove nothing")
	}

	st.SetSealer(newSealer(t))
	n, err := st.SealExisting(ctx)
	if err != nil || n != 4 {
		t.Fatalf("sealed %d: %v", n, err)
	}
	if n, err := st.SealExisting(ctx); err != nil || n != 0 {
		t.Fatalf("the second start sealed %d again: %v", n, err)
	}
	disk := dbBytes(t, st, path)
	for _, s := range []string{"tok-plain-4711", "ent-pw-9876", "cfg-pw-5150"} {
		if bytes.Contains(disk, []byte(s)) {
			t.Errorf("%s is still on disk", s)
		}
	}
	if !bytes.Contains(disk, []byte("visible-1")) {
		t.Error("a plain env value was sealed (or the check reads the wrong file)")
	}
	got, _ := st.GetJob(ctx, "jold")
	if opened, err := st.OpenBlockSecrets(got.Block); err != nil || !strings.Contains(opened, "tok-plain-4711") {
		t.Fatalf("the sealed job's secret: %s %v", opened, err)
	}
	if v, err := st.GetEntity(ctx, "", "pkg", "Db"); err != nil || v != `{"password":"ent-pw-9876"}` {
		t.Fatalf("the sealed entity: %q %v", v, err)
	}
}
