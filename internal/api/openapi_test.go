package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/service"
	"github.com/berthproject/berth/internal/storage"
	"github.com/berthproject/berth/internal/store"
)

const openAPIFile = "internal/api/openapi.json"

// openAPIDocument is the embedded document, parsed, with a compiler for its schemas.
type openAPIDocument struct {
	doc map[string]any
	c   *jsonschema.Compiler
}

func loadOpenAPI(t *testing.T) *openAPIDocument {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("%s is not JSON: %v", openAPIFile, err)
	}
	raw, err := jsonschema.UnmarshalJSON(bytes.NewReader(OpenAPI()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource("openapi.json", raw); err != nil {
		t.Fatal(err)
	}
	return &openAPIDocument{doc: doc, c: c}
}

// operations are the document's "METHOD /path" keys.
func (o *openAPIDocument) operations() []string {
	var out []string
	for path, item := range o.doc["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options":
				out = append(out, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(out)
	return out
}

func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// responseSchema compiles the schema the document gives for one response of an operation.
func (o *openAPIDocument) responseSchema(t *testing.T, method, path string, status int, ctype string) *jsonschema.Schema {
	t.Helper()
	item, _ := o.doc["paths"].(map[string]any)[path].(map[string]any)
	opn, _ := item[strings.ToLower(method)].(map[string]any)
	if opn == nil {
		t.Fatalf("%s has no operation %s %s", openAPIFile, method, path)
	}
	resps := opn["responses"].(map[string]any)
	resp, ok := resps[fmt.Sprint(status)].(map[string]any)
	if !ok {
		t.Fatalf("%s: %s %s documents no %d response (it has %v)", openAPIFile, method, path, status, keys(resps))
	}
	ptr := "#/paths/" + pointerEscape(path) + "/" + strings.ToLower(method) + "/responses/" + fmt.Sprint(status)
	if ref, ok := resp["$ref"].(string); ok {
		ptr = ref
		name := strings.TrimPrefix(ref, "#/components/responses/")
		resp = o.doc["components"].(map[string]any)["responses"].(map[string]any)[name].(map[string]any)
	}
	if _, ok := resp["content"].(map[string]any)[ctype]; !ok {
		t.Fatalf("%s: %s %s %d documents no %s body", openAPIFile, method, path, status, ctype)
	}
	sch, err := o.c.Compile("openapi.json" + ptr + "/content/" + pointerEscape(ctype) + "/schema")
	if err != nil {
		t.Fatalf("compile the schema of %s %s %d: %v", method, path, status, err)
	}
	return sch
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// check validates a JSON response against the document's schema for it.
func (o *openAPIDocument) check(t *testing.T, method, path string, resp *http.Response) any {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s %s: the body is not JSON: %v\n%s", method, path, err, b)
	}
	if err := o.responseSchema(t, method, path, resp.StatusCode, "application/json").Validate(v); err != nil {
		t.Errorf("%s %s answered %d with a body the document does not allow: %v\nbody: %s", method, path, resp.StatusCode, err, b)
	}
	return v
}

// allRoutesServer is a server with every optional part on, so every route is registered.
func allRoutesServer(t *testing.T) *Server {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return New(Config{}, Deps{Jobs: &fakeJobs{jobs: map[string]job.Job{}}, Auth: auth.New(st), Store: st,
		Storage: &storage.Storage{}, Services: &service.Manager{}, Proxy: http.NotFoundHandler(),
		ImageStats: func() (int64, int64, int64) { return 0, 0, 0 }, BuildLog: func(string) (string, error) { return "", nil }})
}

// TestOpenAPICoversEveryRoute: the document names every route the server registers, and
// only those. Routes are what the muxes registered (Server.Routes), not a list kept by hand.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	o := loadOpenAPI(t)
	documented := o.operations()
	var registered []string
	for _, pattern := range allRoutesServer(t).Routes() {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok || strings.Contains(method, "/") {
			t.Errorf("route %q has no method: every API route names its method", pattern)
			continue
		}
		path = strings.ReplaceAll(path, "...}", "}") // {rest...} is {rest} in OpenAPI
		registered = append(registered, method+" "+path)
	}
	if len(registered) < 40 {
		t.Fatalf("only %d routes registered: %v", len(registered), registered)
	}
	for _, r := range registered {
		if !slices.Contains(documented, r) {
			method, path, _ := strings.Cut(r, " ")
			t.Errorf("route %s is registered but missing from %s: add paths[%q].%s", r, openAPIFile, path, strings.ToLower(method))
		}
	}
	for _, d := range documented {
		if !slices.Contains(registered, d) {
			t.Errorf("%s documents %s, which the server does not register: remove it or register the route", openAPIFile, d)
		}
	}
}

// TestOpenAPIDocument: the document is served without a token, is OpenAPI 3.1, and every
// schema in it compiles; every operation has an id, a summary and responses.
func TestOpenAPIDocument(t *testing.T) {
	f := newFixture(t)
	resp, err := http.Get(f.srv.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /api/v1/openapi.json without a token: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !bytes.Equal(body, OpenAPI()) {
		t.Fatal("the served document is not the embedded one")
	}
	o := loadOpenAPI(t)
	if v := o.doc["openapi"]; v != "3.1.0" {
		t.Fatalf("openapi = %v, want 3.1.0", v)
	}
	for name := range o.doc["components"].(map[string]any)["schemas"].(map[string]any) {
		if _, err := o.c.Compile("openapi.json#/components/schemas/" + name); err != nil {
			t.Errorf("schema %s: %v", name, err)
		}
	}
	ids := map[string]string{}
	for path, item := range o.doc["paths"].(map[string]any) {
		for method, v := range item.(map[string]any) {
			opn := v.(map[string]any)
			id, _ := opn["operationId"].(string)
			if id == "" || opn["summary"] == nil || len(opn["responses"].(map[string]any)) == 0 {
				t.Errorf("%s %s: needs operationId, summary and responses", method, path)
			}
			if prev, ok := ids[id]; ok {
				t.Errorf("operationId %s is used by %s and %s %s", id, prev, method, path)
			}
			ids[id] = method + " " + path
			if strings.Contains(path, "{") {
				for _, seg := range strings.Split(path, "/") {
					if !strings.HasPrefix(seg, "{") {
						continue
					}
					name := strings.Trim(seg, "{}")
					found := false
					for _, p := range opn["parameters"].([]any) {
						pm := p.(map[string]any)
						found = found || (pm["in"] == "path" && pm["name"] == name)
					}
					if !found {
						t.Errorf("%s %s: path parameter %s is not described", method, path, name)
					}
				}
			}
		}
	}
}

// TestResponsesMatchOpenAPI: real answers of the API (jobs, errors, health) validate against
// the document's schemas for them.
func TestResponsesMatchOpenAPI(t *testing.T) {
	f := newFixture(t)
	o := loadOpenAPI(t)
	call := func(method, path, token, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	o.check(t, "GET", "/healthz", call("GET", "/healthz", "", ""))
	j := o.check(t, "POST", "/api/v1/jobs", call("POST", "/api/v1/jobs", f.user, validSpec)).(map[string]any)
	id := j["id"].(string)
	// A finished job with two attempts, as the job core records them.
	f.jobs.mu.Lock()
	fj := f.jobs.jobs[id]
	now, code := f.jobs.jobs[id].CreatedAt, 3
	fj.State, fj.Reason = job.StateSucceeded, job.ReasonNone
	fj.Timings = []job.StageTiming{{Stage: "run", StartedAt: now, DurationMS: 12.5}}
	fj.Attempts = []job.Attempt{
		{Number: 1, State: job.StateFailed, Reason: job.ReasonAppError, Message: "the script exited with code 3", ExitCode: &code, StartedAt: now, FinishedAt: &now},
		{Number: 2, State: job.StateSucceeded, StartedAt: now, FinishedAt: &now}}
	f.jobs.jobs[id] = fj
	f.jobs.mu.Unlock()
	o.check(t, "GET", "/api/v1/jobs/{id}", call("GET", "/api/v1/jobs/"+id, f.user, ""))
	o.check(t, "GET", "/api/v1/jobs", call("GET", "/api/v1/jobs?limit=5", f.user, ""))
	o.check(t, "GET", "/api/v1/jobs/{id}/logs", call("GET", "/api/v1/jobs/"+id+"/logs", f.user, ""))
	// Errors: unknown job, bad query, invalid spec (with its problems), no token.
	o.check(t, "GET", "/api/v1/jobs/{id}", call("GET", "/api/v1/jobs/nope", f.user, ""))
	o.check(t, "GET", "/api/v1/jobs", call("GET", "/api/v1/jobs?state=done", f.user, ""))
	o.check(t, "POST", "/api/v1/jobs", call("POST", "/api/v1/jobs", f.user, `{"spec": "name: x\nlanguage: cobol\ncode: x\n"}`))
	o.check(t, "GET", "/api/v1/jobs", call("GET", "/api/v1/jobs", "", ""))
	o.check(t, "POST", "/api/v1/signin-links", call("POST", "/api/v1/signin-links", f.user, `{"next": "/proxy/x/"}`))
}
