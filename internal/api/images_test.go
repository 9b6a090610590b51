package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/image"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
	"github.com/berthproject/berth/internal/store"
)

// TestImagesAPI: the image routes on a real store and engine answer what the OpenAPI document
// says: the list, a removal (of a record whose image is gone), a base image refused with 409,
// an unknown one 404, and a dry-run collection that removes nothing.
func TestImagesAPI(t *testing.T) {
	ctx := context.Background()
	eng := enginetest.Require(t)
	bb := enginetest.Busybox(t, eng)
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := auth.New(st)
	admin, _, err := a.IssueToken(ctx, auth.TokenSpec{Name: "root", Role: auth.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	rec := image.NewRecords(eng, st, "api-images-"+enginetest.Unique(t), nil)
	img, err := eng.InspectImage(ctx, bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.UsedAt(ctx, bb, img, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	gone := "berth/gen:api-gone-" + enginetest.Unique(t)
	if err := st.PutImageRecord(ctx, store.ImageRecord{Ref: gone, Kind: image.KindGenerated, LastUsed: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// A limit of 1 byte: a dry run chooses whatever removable images this instance has (none
	// on the engine here), and removes nothing.
	c := image.NewCollector(rec, image.Policy{Limit: 1, Low: 0, MinIdle: image.DefaultMinIdle})
	s := New(Config{}, Deps{Jobs: &fakeJobs{}, Auth: a, Store: st, Images: c})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	o := loadOpenAPI(t)
	call := func(method, path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	resp := call("GET", "/api/v1/images")
	if resp.StatusCode != 200 {
		t.Fatalf("list: %d", resp.StatusCode)
	}
	list := o.check(t, "GET", "/api/v1/images", resp).(map[string]any)
	found := false
	for _, it := range list["images"].([]any) {
		im := it.(map[string]any)
		if im["ref"] == bb {
			found = im["kind"] == "base" && im["removable"] == false && im["last_used"] != nil
		}
		if im["ref"] == gone {
			t.Errorf("an image gone from the engine is listed: %v", im)
		}
	}
	if !found {
		t.Errorf("the used base image %s is not listed as a base image with its last use: %v", bb, list)
	}

	resp = call("DELETE", "/api/v1/images/"+bb)
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("remove a base image: %d, want 409", resp.StatusCode)
	}
	if e := o.check(t, "DELETE", "/api/v1/images/{ref}", resp).(map[string]any)["error"].(map[string]any); e["code"] != "base_image" {
		t.Errorf("remove a base image: %v", e)
	}
	if _, err := eng.InspectImage(ctx, bb); err != nil {
		t.Fatalf("the base image is gone: %v", err)
	}
	resp = call("DELETE", "/api/v1/images/"+gone)
	if resp.StatusCode != 200 {
		t.Fatalf("remove a recorded image gone from the engine: %d", resp.StatusCode)
	}
	o.check(t, "DELETE", "/api/v1/images/{ref}", resp)
	resp = call("DELETE", "/api/v1/images/"+gone)
	if resp.StatusCode != 404 {
		t.Errorf("remove it again: %d, want 404", resp.StatusCode)
	}
	o.check(t, "DELETE", "/api/v1/images/{ref}", resp)

	resp = call("POST", "/api/v1/images/gc?dry_run=true")
	if resp.StatusCode != 200 {
		t.Fatalf("dry run: %d", resp.StatusCode)
	}
	plan := o.check(t, "POST", "/api/v1/images/gc", resp).(map[string]any)
	if plan["dry_run"] != true || !strings.Contains(plan["summary"].(string), "removable images take") {
		t.Errorf("dry run: %v", plan)
	}
	resp = call("POST", "/api/v1/images/gc?dry_run=perhaps")
	if resp.StatusCode != 400 {
		t.Errorf("dry_run=perhaps: %d, want 400", resp.StatusCode)
	}
	o.check(t, "POST", "/api/v1/images/gc", resp)
}
