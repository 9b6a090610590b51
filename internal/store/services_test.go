package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestPutServiceKeepsProjectAndPackage: a service's project and package are fixed when it is
// first stored; a replacement from another project or package is ErrConflict and changes
// nothing, one from the same project and package replaces the definition.
func TestPutServiceKeepsProjectAndPackage(t *testing.T) {
	ctx := context.Background()
	st, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	row := ServiceRow{Name: "web", Package: "shop", Project: "alpha", Port: 8080, ContainerJSON: "{}", ImageState: "READY",
		ImageChangedAt: now, ContainerState: "STOPPED", ContainerChangedAt: now, CreatedAt: now}
	if err := st.PutService(ctx, row); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []ServiceRow{{Project: "beta", Package: "shop"}, {Project: "alpha", Package: "billing"}, {Project: "", Package: "shop"}} {
		r := row
		r.Project, r.Package, r.Port = bad.Project, bad.Package, 9999
		if err := st.PutService(ctx, r); !errors.Is(err, ErrConflict) {
			t.Errorf("replace with project %q package %q: %v, want ErrConflict", bad.Project, bad.Package, err)
		}
	}
	got, err := st.GetService(ctx, "web")
	if err != nil || got.Project != "alpha" || got.Package != "shop" || got.Port != 8080 {
		t.Fatalf("after refused replacements: %+v %v", got, err)
	}
	row.Port = 9090
	if err := st.PutService(ctx, row); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.GetService(ctx, "web"); got.Port != 9090 {
		t.Errorf("a replacement of the same project and package was not stored: %+v", got)
	}
}
