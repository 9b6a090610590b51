package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/service"
)

// TestSealedEntityReachesTheServiceEnv: an entity is kept sealed in the store (its value is not
// in the database's bytes) and a service's #{x.Package:Entity} still becomes its value in the
// container's env. Busybox only, so it runs without the python base.
func TestSealedEntityReachesTheServiceEnv(t *testing.T) {
	f, img := newBusyboxFixture(t, nil)
	ctx := context.Background()
	if err := f.m.PutEntity(ctx, "", "pkg", "Conn", json.RawMessage(`{"host":"db","password":"ent-s3cret-61"}`)); err != nil {
		t.Fatal(err)
	}
	df := fmt.Sprintf(`FROM %s
EXPOSE 8080
CMD ["sh", "-c", "mkdir -p /tmp/www; echo \"conn=$CONN\" > /tmp/www/index.html; exec httpd -f -p 8080 -h /tmp/www"]
`, img)
	if _, err := f.m.Create(ctx, "", "sealed-ent", "pkg", busyboxContext(df, `{"on_demand": true, "storage": 0, "env": {"CONN": "#{x.pkg:Conn}"}}`)); err != nil {
		t.Fatal(err)
	}
	f.waitImage(t, "sealed-ent", service.ImageReady)
	if _, body := f.get(t, "/proxy/sealed-ent/"); !strings.Contains(body, `conn={"host":"db","password":"ent-s3cret-61"}`) {
		t.Fatalf("env not resolved: %s", body)
	}

	var seq int
	var name, path string
	if err := f.st.DB.QueryRow(`PRAGMA database_list`).Scan(&seq, &name, &path); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.DB.Exec(`PRAGMA wal_checkpoint(FULL)`); err != nil {
		t.Fatal(err)
	}
	var disk []byte
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		disk = append(disk, b...)
	}
	if !bytes.Contains(disk, []byte("sealed-ent")) {
		t.Fatal("the service's name is not in the bytes read: the check below would prove nothing")
	}
	if bytes.Contains(disk, []byte("ent-s3cret-61")) {
		t.Fatal("the entity's value is in the database's bytes")
	}
}
