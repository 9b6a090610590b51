package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/store"
)

// auditFixture is a server on a real store with two projects and a token of each role.
type auditFixture struct {
	*fixture
	st  *store.Store
	a   *auth.Auth
	s   *Server
	tok map[string]string // admin, alpha-admin, alpha-member, alpha-reader, beta-member
	ids map[string]string
}

func newAuditFixture(t *testing.T) *auditFixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, p := range []string{"alpha", "beta"} {
		if err := st.CreateProject(ctx, store.Project{ID: p}); err != nil {
			t.Fatal(err)
		}
	}
	a := auth.New(st)
	f := &auditFixture{st: st, a: a, tok: map[string]string{}, ids: map[string]string{}}
	for _, ts := range []auth.TokenSpec{
		{Name: "admin", Role: auth.RoleAdmin},
		{Name: "alpha-admin", Project: "alpha", Role: auth.RoleProjectAdmin},
		{Name: "alpha-member", Project: "alpha", Role: auth.RoleMember},
		{Name: "alpha-reader", Project: "alpha", Role: auth.RoleReadOnly},
		{Name: "beta-member", Project: "beta", Role: auth.RoleMember},
	} {
		plain, tok, err := a.IssueToken(ctx, ts)
		if err != nil {
			t.Fatal(err)
		}
		f.tok[ts.Name], f.ids[ts.Name] = plain, tok.ID
	}
	fj := &fakeJobs{jobs: map[string]job.Job{}}
	f.s = New(Config{}, Deps{Jobs: fj, Auth: a, Store: st})
	srv := httptest.NewServer(f.s)
	t.Cleanup(srv.Close)
	f.fixture = &fixture{srv: srv, jobs: fj}
	return f
}

func (f *auditFixture) audit(t *testing.T, filter store.AuditFilter) []store.AuditEntry {
	t.Helper()
	es, err := f.st.ListAudit(context.Background(), filter)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// auditList calls GET /api/v1/audit and returns the status and the entries.
func (f *auditFixture) auditList(t *testing.T, token, query string) (int, []store.AuditEntry) {
	t.Helper()
	req, _ := http.NewRequest("GET", f.srv.URL+"/api/v1/audit"+query, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Entries []store.AuditEntry `json:"entries"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out.Entries
}

func TestAuditRecordsStateChangingRequests(t *testing.T) {
	f := newAuditFixture(t)

	// A member's job: recorded with its actor, project, route and resource.
	if code, m := f.do(t, "POST", "/api/v1/jobs", f.tok["alpha-member"], validSpec); code != 201 {
		t.Fatalf("submit: %d %v", code, m)
	}
	es := f.audit(t, store.AuditFilter{Action: "POST /api/v1/jobs"})
	if len(es) != 1 {
		t.Fatalf("entries for the submit: %+v", es)
	}
	if e := es[0]; e.ActorID != f.ids["alpha-member"] || e.ActorName != "alpha-member" || e.Project != "alpha" ||
		e.Outcome != store.AuditOK || e.Status != 201 || e.Resource != "/api/v1/jobs" || e.Remote != "127.0.0.1" {
		t.Fatalf("submit recorded as %+v", e)
	}
	// Reads are not recorded.
	f.do(t, "GET", "/api/v1/jobs", f.tok["alpha-member"], "")
	if es := f.audit(t, store.AuditFilter{Action: "GET /api/v1/jobs"}); len(es) != 0 {
		t.Fatalf("a read was recorded: %+v", es)
	}

	// A member refused by authz: recorded, denied, with its actor.
	if code, _ := f.do(t, "POST", "/api/v1/projects", f.tok["alpha-member"], `{"id": "gamma"}`); code != 403 {
		t.Fatalf("a member made a project: %d", code)
	}
	es = f.audit(t, store.AuditFilter{Action: "POST /api/v1/projects"})
	if len(es) != 1 || es[0].Outcome != store.AuditDenied || es[0].Status != 403 || es[0].ActorName != "alpha-member" {
		t.Fatalf("refused project creation recorded as %+v", es)
	}

	// No token: 401, recorded without an actor, with the route it was for.
	if code, _ := f.do(t, "DELETE", "/api/v1/jobs/j0", "", ""); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	es = f.audit(t, store.AuditFilter{Action: "DELETE /api/v1/jobs/{id}"})
	if len(es) != 1 || es[0].ActorID != "" || es[0].ActorName != "" || es[0].Outcome != store.AuditDenied || es[0].Status != 401 ||
		es[0].Resource != "job j0" {
		t.Fatalf("unauthenticated delete recorded as %+v", es)
	}

	// A made token's value is in the answer, never in the log.
	code, m := f.do(t, "POST", "/api/v1/tokens", f.tok["alpha-admin"], `{"name": "ci", "role": "member"}`)
	if code != 201 {
		t.Fatalf("token create: %d %v", code, m)
	}
	plain, _ := m["token"].(string)
	if !strings.HasPrefix(plain, "berth_") {
		t.Fatalf("token create answered %v", m)
	}
	if code, _ := f.do(t, "DELETE", "/api/v1/tokens/"+m["id"].(string), f.tok["alpha-admin"], ""); code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	es = f.audit(t, store.AuditFilter{Action: "DELETE /api/v1/tokens/{id}"})
	if len(es) != 1 || es[0].Resource != "token "+m["id"].(string) || es[0].Outcome != store.AuditOK {
		t.Fatalf("revoke recorded as %+v", es)
	}
	for _, e := range f.audit(t, store.AuditFilter{Limit: 1000}) {
		b, _ := json.Marshal(e)
		for _, secret := range append([]string{plain}, f.tok["alpha-admin"], f.tok["alpha-member"]) {
			if strings.Contains(string(b), secret) || strings.Contains(string(b), "berth_") {
				t.Fatalf("a token reached the audit log: %s", b)
			}
		}
	}

	// A job's end: actor its owner, project its project.
	fin := time.Now().UTC()
	f.s.ObserveJob(job.Job{ID: "j9", Owner: "alpha-member", Project: "alpha", State: job.StateFailed, Reason: job.ReasonAppError, FinishedAt: &fin})
	es = f.audit(t, store.AuditFilter{Action: "job.finished"})
	if len(es) != 1 || es[0].ActorName != "alpha-member" || es[0].Project != "alpha" || es[0].Resource != "job j9" ||
		!strings.Contains(es[0].Detail, "state=failed") || !strings.Contains(es[0].Detail, "app_error") {
		t.Fatalf("job end recorded as %+v", es)
	}
}

func TestAuditRecordsSignins(t *testing.T) {
	f := newAuditFixture(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(token string) int {
		resp, err := noRedirect.PostForm(f.srv.URL+"/signin", url.Values{"token": {token}, "next": {"/"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(f.tok["beta-member"]); code != http.StatusSeeOther {
		t.Fatalf("sign in: %d", code)
	}
	if code := post("berth_nope"); code != http.StatusUnauthorized {
		t.Fatalf("sign in with a bad token: %d", code)
	}
	es := f.audit(t, store.AuditFilter{Action: "POST /signin"})
	if len(es) != 2 {
		t.Fatalf("sign-ins recorded: %+v", es)
	}
	bad, good := es[0], es[1]
	if good.ActorID != f.ids["beta-member"] || good.Project != "beta" || good.Outcome != store.AuditOK {
		t.Fatalf("sign-in recorded as %+v", good)
	}
	if bad.ActorID != "" || bad.Outcome != store.AuditDenied || bad.Status != 401 || strings.Contains(bad.Detail, "berth_nope") {
		t.Fatalf("failed sign-in recorded as %+v", bad)
	}

	// A sign-in link: made through the API (recorded), then used (recorded), then used again.
	code, m := f.do(t, "POST", "/api/v1/signin-links", f.tok["beta-member"], `{"next": "/"}`)
	if code != 201 {
		t.Fatalf("signin link: %d %v", code, m)
	}
	for _, want := range []int{http.StatusSeeOther, http.StatusUnauthorized} {
		resp, err := noRedirect.Get(f.srv.URL + m["path"].(string))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("link: %d, want %d", resp.StatusCode, want)
		}
	}
	es = f.audit(t, store.AuditFilter{Action: "GET /signin/link"})
	if len(es) != 2 || es[1].ActorName != "beta-member" || es[1].Outcome != store.AuditOK ||
		es[0].ActorName != "" || es[0].Outcome != store.AuditDenied {
		t.Fatalf("link sign-ins recorded as %+v", es)
	}
	for _, e := range es {
		if strings.Contains(e.Resource+e.Detail+e.Action, "code") {
			t.Fatalf("a sign-in code reached the log: %+v", e)
		}
	}
}

func TestAuditListByRole(t *testing.T) {
	f := newAuditFixture(t)
	f.do(t, "POST", "/api/v1/jobs", f.tok["alpha-member"], validSpec)
	f.do(t, "POST", "/api/v1/jobs", f.tok["beta-member"], validSpec)
	f.do(t, "POST", "/api/v1/jobs", "", validSpec) // no project

	code, es := f.auditList(t, f.tok["alpha-admin"], "")
	if code != 200 || len(es) != 1 || es[0].Project != "alpha" {
		t.Fatalf("project admin: %d %+v", code, es)
	}
	if code, _ := f.auditList(t, f.tok["alpha-admin"], "?project=alpha&actor=alpha-member&limit=5"); code != 200 {
		t.Fatalf("project admin, own project: %d", code)
	}
	if code, es := f.auditList(t, f.tok["alpha-admin"], "?project=beta"); code != 404 || len(es) != 0 {
		t.Fatalf("project admin asking for another project: %d %+v", code, es)
	}
	if code, _ := f.auditList(t, f.tok["alpha-member"], ""); code != 403 {
		t.Fatalf("member: %d", code)
	}
	if code, _ := f.auditList(t, f.tok["alpha-reader"], ""); code != 403 {
		t.Fatalf("read-only: %d", code)
	}
	code, es = f.auditList(t, f.tok["admin"], "")
	if code != 200 || len(es) != 3 {
		t.Fatalf("admin: %d %+v", code, es)
	}
	if code, es := f.auditList(t, f.tok["admin"], "?project=beta"); code != 200 || len(es) != 1 || es[0].ActorName != "beta-member" {
		t.Fatalf("admin, one project: %d %+v", code, es)
	}
	future := url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339))
	if code, es := f.auditList(t, f.tok["admin"], "?since="+future); code != 200 || len(es) != 0 {
		t.Fatalf("admin, since the future: %d %+v", code, es)
	}
	if code, _ := f.auditList(t, f.tok["admin"], "?since=1h"); code != 400 {
		t.Fatalf("a bad since: %d", code)
	}
}

func TestProjectsAndTokensRoutes(t *testing.T) {
	f := newAuditFixture(t)
	// Projects: an admin makes them and sets quotas; nobody else.
	if code, m := f.do(t, "POST", "/api/v1/projects", f.tok["admin"], `{"id": "gamma", "max_concurrent_jobs": 2, "max_storage_bytes": 1024}`); code != 201 ||
		m["id"] != "gamma" || m["max_concurrent_jobs"] != 2.0 {
		t.Fatalf("admin creates a project: %d %v", code, m)
	}
	if code, _ := f.do(t, "POST", "/api/v1/projects", f.tok["admin"], `{"id": "gamma"}`); code != 409 {
		t.Fatalf("a taken id: %d", code)
	}
	if code, _ := f.do(t, "POST", "/api/v1/projects", f.tok["admin"], `{"id": "Bad_ID"}`); code != 400 {
		t.Fatalf("a bad id: %d", code)
	}
	if code, _ := f.do(t, "POST", "/api/v1/projects", f.tok["alpha-admin"], `{"id": "delta"}`); code != 403 {
		t.Fatalf("a project admin creates a project: %d", code)
	}
	if code, m := f.do(t, "PATCH", "/api/v1/projects/gamma", f.tok["admin"], `{"max_concurrent_jobs": 5}`); code != 200 ||
		m["max_concurrent_jobs"] != 5.0 || m["max_storage_bytes"] != 1024.0 {
		t.Fatalf("admin sets a quota: %d %v", code, m)
	}
	if code, _ := f.do(t, "PATCH", "/api/v1/projects/alpha", f.tok["alpha-admin"], `{"max_concurrent_jobs": 50}`); code != 403 {
		t.Fatalf("a project admin raises its quota: %d", code)
	}
	if code, _ := f.do(t, "PATCH", "/api/v1/projects/beta", f.tok["alpha-admin"], `{"max_concurrent_jobs": 50}`); code != 404 {
		t.Fatalf("a project admin sets another project's quota: %d", code)
	}
	if code, _ := f.do(t, "PATCH", "/api/v1/projects/nope", f.tok["admin"], `{"max_concurrent_jobs": 1}`); code != 404 {
		t.Fatalf("an unknown project: %d", code)
	}
	if code, _ := f.do(t, "PATCH", "/api/v1/projects/gamma", f.tok["admin"], `{"max_concurrent_jobs": -1}`); code != 400 {
		t.Fatalf("a negative quota: %d", code)
	}
	projectIDs := func(token string) []string {
		code, m := f.do(t, "GET", "/api/v1/projects", token, "")
		if code != 200 {
			t.Fatalf("list projects: %d %v", code, m)
		}
		var ids []string
		for _, p := range m["projects"].([]any) {
			ids = append(ids, p.(map[string]any)["id"].(string))
		}
		return ids
	}
	if ids := projectIDs(f.tok["admin"]); strings.Join(ids, ",") != "alpha,beta,default,gamma" {
		t.Fatalf("admin sees projects %v", ids)
	}
	if ids := projectIDs(f.tok["alpha-reader"]); strings.Join(ids, ",") != "alpha" {
		t.Fatalf("a reader sees projects %v", ids)
	}

	// Tokens: a project admin makes and revokes its project's, never an admin one.
	code, m := f.do(t, "POST", "/api/v1/tokens", f.tok["alpha-admin"], `{"name": "bot", "role": "read-only", "expires_in": "30d"}`)
	if code != 201 || m["project"] != "alpha" || m["role"] != "read-only" || m["expires_at"] == nil || m["hash"] != nil {
		t.Fatalf("project admin makes a token: %d %v", code, m)
	}
	bot, botID := m["token"].(string), m["id"].(string)
	if exp, _ := time.Parse(time.RFC3339, m["expires_at"].(string)); time.Until(exp) < 29*24*time.Hour || time.Until(exp) > 31*24*time.Hour {
		t.Fatalf("expires_in 30d: expires %v", exp)
	}
	if code, _ := f.do(t, "GET", "/api/v1/projects", bot, ""); code != 200 {
		t.Fatalf("the new token does not work: %d", code)
	}
	for _, c := range []struct {
		who, body string
		want      int
	}{
		{"alpha-admin", `{"name": "x1", "project": "beta"}`, 404},
		{"alpha-admin", `{"name": "x2", "role": "admin"}`, 403},
		{"alpha-member", `{"name": "x3"}`, 403},
		{"admin", `{"name": "x4", "project": "nope"}`, 400},
		{"admin", `{"name": "x5", "role": "owner"}`, 400},
		{"admin", `{"name": "x6", "expires_in": "soon"}`, 400},
		{"admin", `{"name": "x7", "scope": "bucket:b1:admin"}`, 400},
		{"alpha-admin", `{"name": "bot"}`, 409},
		{"admin", `{"name": "x8", "role": "admin", "project": "beta"}`, 201},
		{"alpha-admin", `{"name": "x9", "role": "project-admin"}`, 201},
	} {
		if code, m := f.do(t, "POST", "/api/v1/tokens", f.tok[c.who], c.body); code != c.want {
			t.Errorf("%s POST /api/v1/tokens %s: %d %v, want %d", c.who, c.body, code, m, c.want)
		}
	}
	tokenNames := func(token string) map[string]map[string]any {
		code, m := f.do(t, "GET", "/api/v1/tokens", token, "")
		if code != 200 {
			t.Fatalf("list tokens: %d %v", code, m)
		}
		out := map[string]map[string]any{}
		for _, x := range m["tokens"].([]any) {
			tv := x.(map[string]any)
			if tv["hash"] != nil || tv["token"] != nil {
				t.Fatalf("a token list shows a secret: %v", tv)
			}
			out[tv["name"].(string)] = tv
		}
		return out
	}
	got := tokenNames(f.tok["alpha-admin"])
	for _, n := range []string{"alpha-admin", "alpha-member", "alpha-reader", "bot", "x9"} {
		if got[n] == nil {
			t.Errorf("project admin's list lacks %s: %v", n, got)
		}
	}
	if len(got) != 5 {
		t.Errorf("project admin sees tokens of other projects: %v", got)
	}
	if len(tokenNames(f.tok["admin"])) != 8 {
		t.Errorf("admin sees %v", tokenNames(f.tok["admin"]))
	}
	if code, _ := f.do(t, "GET", "/api/v1/tokens", f.tok["alpha-member"], ""); code != 403 {
		t.Errorf("a member lists tokens: %d", code)
	}

	// Revoking: own project's, not another's nor an admin's.
	if code, _ := f.do(t, "DELETE", "/api/v1/tokens/"+f.ids["beta-member"], f.tok["alpha-admin"], ""); code != 404 {
		t.Errorf("project admin revokes another project's token: %d", code)
	}
	if code, _ := f.do(t, "DELETE", "/api/v1/tokens/"+f.ids["admin"], f.tok["alpha-admin"], ""); code != 404 {
		t.Errorf("project admin revokes the admin token (default project): %d", code)
	}
	if code, m := f.do(t, "DELETE", "/api/v1/tokens/"+botID, f.tok["alpha-admin"], ""); code != 200 || m["revoked_at"] == nil {
		t.Fatalf("project admin revokes its project's token: %d %v", code, m)
	}
	if code, _ := f.do(t, "GET", "/api/v1/projects", bot, ""); code != 401 {
		t.Fatalf("a revoked token still works: %d", code)
	}
	if code, _ := f.do(t, "DELETE", "/api/v1/tokens/"+botID, f.tok["alpha-admin"], ""); code != 409 {
		t.Fatalf("revoke twice: %d", code)
	}
	if code, _ := f.do(t, "DELETE", "/api/v1/tokens/tok_nope", f.tok["admin"], ""); code != 404 {
		t.Fatalf("revoke an unknown token: %d", code)
	}
}

func TestProjectAdminCannotRevokeAnAdminTokenInItsProject(t *testing.T) {
	f := newAuditFixture(t)
	_, tok, err := f.a.IssueToken(context.Background(), auth.TokenSpec{Name: "alpha-root", Project: "alpha", Role: auth.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := f.do(t, "DELETE", "/api/v1/tokens/"+tok.ID, f.tok["alpha-admin"], ""); code != 403 {
		t.Fatalf("project admin revokes an admin token: %d", code)
	}
	if code, _ := f.do(t, "DELETE", "/api/v1/tokens/"+tok.ID, f.tok["admin"], ""); code != 200 {
		t.Fatalf("admin revokes an admin token: %d", code)
	}
}

func TestResourceOf(t *testing.T) {
	for _, c := range []struct{ pattern, path, want string }{
		{"POST /api/v1/jobs", "/api/v1/jobs", "/api/v1/jobs"},
		{"POST /api/v1/jobs/{id}/cancel", "/api/v1/jobs/j_1/cancel", "job j_1"},
		{"POST /api/v1/components/{id}/actions/{action}", "/api/v1/components/c1/actions/run", "component c1 action run"},
		{"PUT /api/v1/packages/{pkg}/entities/{name}", "/api/v1/packages/p/entities/e", "package p entity e"},
		{"PUT /api/v1/files/{rest...}", "/api/v1/files/a/b", "file a/b"},
		{"DELETE /api/v1/x", "/api/v1/x", "/api/v1/x"},
	} {
		if got := resourceOf(c.pattern, c.path); got != c.want {
			t.Errorf("resourceOf(%q, %q) = %q, want %q", c.pattern, c.path, got, c.want)
		}
	}
}

// TestAdminResponsesMatchOpenAPI: the projects, tokens and audit answers are what the
// document says.
func TestAdminResponsesMatchOpenAPI(t *testing.T) {
	f := newAuditFixture(t)
	o := loadOpenAPI(t)
	call := func(method, path, token, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	admin := f.tok["admin"]
	o.check(t, "POST", "/api/v1/projects", call("POST", "/api/v1/projects", admin, `{"id": "gamma", "max_storage_bytes": 10}`))
	o.check(t, "POST", "/api/v1/projects", call("POST", "/api/v1/projects", admin, `{"id": "gamma"}`))
	o.check(t, "GET", "/api/v1/projects", call("GET", "/api/v1/projects", admin, ""))
	o.check(t, "PATCH", "/api/v1/projects/{id}", call("PATCH", "/api/v1/projects/gamma", admin, `{"max_concurrent_jobs": 3}`))
	o.check(t, "PATCH", "/api/v1/projects/{id}", call("PATCH", "/api/v1/projects/nope", admin, `{"max_concurrent_jobs": 3}`))
	tok := o.check(t, "POST", "/api/v1/tokens", call("POST", "/api/v1/tokens", admin, `{"name": "n1", "project": "gamma", "expires_in": "2h"}`)).(map[string]any)
	o.check(t, "POST", "/api/v1/tokens", call("POST", "/api/v1/tokens", f.tok["alpha-admin"], `{"name": "n2", "role": "admin"}`))
	o.check(t, "GET", "/api/v1/tokens", call("GET", "/api/v1/tokens", admin, ""))
	o.check(t, "DELETE", "/api/v1/tokens/{id}", call("DELETE", "/api/v1/tokens/"+tok["id"].(string), admin, ""))
	o.check(t, "DELETE", "/api/v1/tokens/{id}", call("DELETE", "/api/v1/tokens/"+tok["id"].(string), admin, ""))
	o.check(t, "GET", "/api/v1/audit", call("GET", "/api/v1/audit?limit=50", admin, ""))
	o.check(t, "GET", "/api/v1/audit", call("GET", "/api/v1/audit", f.tok["alpha-member"], ""))
	o.check(t, "GET", "/api/v1/audit", call("GET", "/api/v1/audit?limit=0", admin, ""))
}
