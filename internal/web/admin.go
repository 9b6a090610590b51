package web

import (
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/authz"
	"github.com/berthproject/berth/internal/store"
)

// canAdmin says whether the caller reaches the admin page: who may manage its project's
// tokens (a project admin, an admin) or read its project's audit log.
func canAdmin(p auth.Principal) bool {
	return allowed(p, authz.TokenManage, authz.Resource{Kind: "token", Project: p.Project}) ||
		allowed(p, authz.AuditRead, authz.Resource{Kind: "audit", ID: p.Project, Project: p.Project})
}

type tokenRow struct {
	ID, Name, Project, Role, Scope, Created, LastUsed, Expires, Revoked string
	Status                                                              status
	Revoke                                                              string // DELETE URL ("": no button)
}

type projectRow struct {
	ID, Created, Storage string
	Jobs                 int
}

type auditFilter struct {
	Actor, Action, Since string
}

type auditRow struct {
	At, Actor, Project, Action, Resource, Outcome, Detail string
	Status                                                int
}

type adminData struct {
	Tokens        []tokenRow
	CanTokens     bool
	Roles         []string
	Projects      []projectRow
	CanProjects   bool
	CanAudit      bool
	Audit         []auditRow
	AuditProblem  string
	Filter        auditFilter
	Engine        string
	EngineDetails []fact
	Version       string
	Project       string
}

type fact struct{ Name, Value string }

// auditLimit is how many of the latest audit entries the page shows.
const auditLimit = 100

// handleAdmin is the admin page: the tokens the caller may manage (create, revoke, last use),
// the projects (an admin makes them and sets their quotas), the audit log (filters: actor,
// action, since) and what the server runs on. Each section shows only what the API would
// show the caller; the actions are the API's own routes.
func (u *UI) handleAdmin(w http.ResponseWriter, r *http.Request) {
	p, ok := u.principal(w, r)
	if !ok {
		return
	}
	if !canAdmin(p) {
		u.fail(w, r, http.StatusForbidden, "The admin page is for admins and project admins.")
		return
	}
	ctx := r.Context()
	d := adminData{Version: u.d.Version, Project: projectOr(p.Project),
		CanTokens:   allowed(p, authz.TokenManage, authz.Resource{Kind: "token", Project: p.Project}),
		CanProjects: allowed(p, authz.ProjectManage, authz.Resource{Kind: "project"}),
		Roles:       []string{auth.RoleReadOnly, auth.RoleMember, auth.RoleProjectAdmin}}
	if d.CanProjects {
		d.Roles = append(d.Roles, auth.RoleAdmin)
	}
	if d.CanTokens {
		toks, err := u.d.Store.ListTokens(ctx)
		if err != nil {
			u.internal(w, r, "list the tokens", err)
			return
		}
		now := u.d.Now()
		for _, t := range toks {
			if !authz.Visible(p, t.Project) {
				continue
			}
			d.Tokens = append(d.Tokens, u.tokenRow(p, t, now))
		}
	}
	projects, err := u.d.Store.ListProjects(ctx)
	if err != nil {
		u.internal(w, r, "list the projects", err)
		return
	}
	for _, pr := range projects {
		if authz.Visible(p, pr.ID) {
			row := projectRow{ID: pr.ID, Created: stamp(pr.CreatedAt), Jobs: pr.MaxConcurrentJobs, Storage: "no quota"}
			if pr.MaxStorageBytes > 0 {
				row.Storage = size(pr.MaxStorageBytes)
			}
			d.Projects = append(d.Projects, row)
		}
	}
	u.audit(r, p, &d)
	if e := u.d.Engine; e != nil {
		d.Engine = e.String()
		d.EngineDetails = []fact{{"Engine", e.Engine}, {"Cgroup", orUnknown(e.CgroupVersion)},
			{"Storage driver", strings.TrimSpace(e.StorageDriver + " " + e.BackingFilesystem)},
			{"Disk quota per container", yesNo(e.StorageQuota, e.StorageQuotaReason)},
			{"CPUs", itoa(e.CPUs)}, {"Memory", size(e.MemoryBytes)},
			{"GPU runtimes", orNone(strings.Join(e.GPURuntimes, ", "))},
			{"Init process", yesNo(e.Init, "")}, {"Memory limit", yesNo(e.MemoryLimit, "")},
			{"Swap limit", yesNo(e.SwapLimit, "")}, {"CPU quota", yesNo(e.CPUQuota, "")}, {"Pids limit", yesNo(e.PidsLimit, "")}}
	}
	u.render(w, r, http.StatusOK, "admin", "Admin", "admin", d)
}

func (u *UI) tokenRow(p auth.Principal, t store.Token, now time.Time) tokenRow {
	row := tokenRow{ID: t.ID, Name: t.Name, Project: projectOr(t.Project), Role: t.Role, Scope: t.Scope, Created: stamp(t.CreatedAt),
		LastUsed: stampPtr(t.LastUsedAt), Expires: stampPtr(t.ExpiresAt), Revoked: stampPtr(t.RevokedAt), Status: status{"ok", "active"}}
	switch {
	case t.RevokedAt != nil:
		row.Status = status{"", "revoked"}
	case t.ExpiresAt != nil && !t.ExpiresAt.After(now):
		row.Status = status{"", "expired"}
	}
	res := authz.Resource{Kind: "token", ID: t.ID, Project: t.Project}
	may := allowed(p, authz.TokenManage, res) && (t.Role != auth.RoleAdmin || allowed(p, authz.ProjectManage, res))
	if t.RevokedAt == nil && may {
		row.Revoke = "/api/v1/tokens/" + t.ID
	}
	return row
}

// audit fills the audit section: the caller's project's entries, or every project's for whom
// may read them all (as GET /api/v1/audit), narrowed by ?actor=, ?action= and ?since=.
func (u *UI) audit(r *http.Request, p auth.Principal, d *adminData) {
	q := r.URL.Query()
	d.Filter = auditFilter{Actor: strings.TrimSpace(q.Get("actor")), Action: strings.TrimSpace(q.Get("action")), Since: strings.TrimSpace(q.Get("since"))}
	f := store.AuditFilter{Actor: d.Filter.Actor, Action: d.Filter.Action, Limit: auditLimit}
	if !allowed(p, authz.AuditRead, authz.Resource{Kind: "audit", Project: anyProject}) {
		f.Project = p.Project
		if !allowed(p, authz.AuditRead, authz.Resource{Kind: "audit", ID: p.Project, Project: p.Project}) {
			return
		}
	}
	d.CanAudit = true
	if d.Filter.Since != "" {
		t, err := parseSince(d.Filter.Since, u.d.Now())
		if err != nil {
			d.AuditProblem = "Since: " + err.Error()
			return
		}
		f.Since = t
	}
	entries, err := u.d.Store.ListAudit(r.Context(), f)
	if err != nil {
		u.d.Log.Error("list the audit log", "err", err)
		d.AuditProblem = "berth could not read the audit log."
		return
	}
	for _, e := range entries {
		actor := e.ActorName
		if actor == "" {
			actor = "(no token)"
		}
		d.Audit = append(d.Audit, auditRow{At: stamp(e.At), Actor: actor, Project: e.Project, Action: e.Action, Resource: e.Resource,
			Outcome: e.Outcome, Detail: e.Detail, Status: e.Status})
	}
}

// parseSince reads ?since=: a time (RFC 3339, or a date), or a duration back from now ("2h").
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errSince
}

type sinceError struct{}

func (sinceError) Error() string {
	return "a time such as 2026-01-02T15:04:05Z or 2026-01-02, or a duration back from now such as 2h"
}

var errSince error = sinceError{}

// buildVersion is berth's version as the build recorded it: the module's version, or its
// VCS revision (with "+dirty" for a modified tree), or "devel".
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	var rev, dirty, at string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		case "vcs.time":
			at = s.Value
		}
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	if rev != "" {
		v += " " + rev[:min(12, len(rev))] + dirty
		if at != "" {
			v += " (" + at + ")"
		}
	}
	return v + ", " + bi.GoVersion
}

func yesNo(b bool, why string) string {
	if b {
		return "yes"
	}
	if why != "" {
		return "no: " + why
	}
	return "no"
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func itoa(n int) string { return strconv.Itoa(n) }
