package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/authz"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/spec"
	"github.com/berthproject/berth/internal/store"
)

// The components page lists the components the caller may use (the shared ones and its
// project's, as GET /api/v1/components) with their configurations; a configuration's page
// shows its parameters, rows, versions, state, whether credentials are stored, and its runs,
// with a Run button (POST /api/v1/configs/{id}/run).

// maxRunScan is how many of a project's newest component jobs the pages look through for a
// configuration's runs; maxRuns is how many of them a configuration's page lists.
const (
	maxRunScan = 1000
	maxRuns    = 50
)

type componentCard struct {
	ID, Image, Project, Network string
	Shared                      bool
	Actions                     []string
	Limits                      string
	Defaults                    string
	Configs                     []configLine
}

type configLine struct {
	ID, Name, Project, Updated string
	Version, Rows              int
	LastRun                    *jobRow
}

type componentsData struct {
	Cards   []componentCard
	Project string
	Self    string
}

// componentResource and configResource are the API's resources (internal/api/components.go),
// so a page asks exactly what the API asks.
func componentResource(row store.ComponentRow) authz.Resource {
	return authz.Resource{Kind: "component", ID: row.ID, Project: row.Project, Shared: row.Shared(), Component: row.ID}
}

func configResource(row store.ConfigRow) authz.Resource {
	return authz.Resource{Kind: "configuration", ID: row.ID, Project: row.Project, Component: row.ComponentID}
}

// handleComponents lists the components the caller may use, each with the configurations of
// it the caller may read (an admin: every project's, or ?project='s).
func (u *UI) handleComponents(w http.ResponseWriter, r *http.Request) {
	p, ok := u.principal(w, r)
	if !ok {
		return
	}
	project := strings.TrimSpace(r.URL.Query().Get("project"))
	if project != "" && !u.can(w, r, p, authz.ConfigRead, authz.Resource{Kind: "project", ID: project, Project: project}) {
		return
	}
	scope := project // the configurations' project ("": every project's, for whom sees them all)
	if scope == "" && !authz.Visible(p, anyProject) {
		scope = p.Project
	}
	rows, err := u.d.Store.ListComponentRows(r.Context())
	if err != nil {
		u.internal(w, r, "list the components", err)
		return
	}
	last, err := u.configRuns(r, scope, "")
	if err != nil {
		u.internal(w, r, "list the components' runs", err)
		return
	}
	d := componentsData{Project: project, Self: "/ui/components"}
	if project != "" {
		d.Self += "?project=" + url.QueryEscape(project)
	}
	for _, row := range rows {
		if authz.Can(p, authz.ComponentRead, componentResource(row)) != nil {
			continue
		}
		if project != "" && !row.Shared() && row.Project != project {
			continue
		}
		c := componentCard{ID: row.ID, Project: row.Project, Shared: row.Shared()}
		var comp spec.Component
		if err := json.Unmarshal([]byte(row.Body), &comp); err == nil {
			c.Image, c.Actions, c.Network = comp.Image, comp.Actions, comp.Network
			if b, _ := json.Marshal(comp.Limits); string(b) != "{}" {
				c.Limits = string(b)
			}
			if len(comp.ImageParameters) > 0 {
				c.Defaults = maskedJSON(comp.ImageParameters)
			}
		}
		configs, err := u.d.Store.ListConfigs(r.Context(), scope, row.ID)
		if err != nil {
			u.internal(w, r, "list the configurations", err)
			return
		}
		for _, cf := range configs {
			if authz.Can(p, authz.ConfigRead, configResource(cf)) != nil {
				continue
			}
			line := configLine{ID: cf.ID, Project: cf.Project, Version: cf.Version, Updated: stamp(cf.UpdatedAt)}
			var body spec.ComponentConfig
			if json.Unmarshal([]byte(cf.Body), &body) == nil {
				line.Name, line.Rows = body.Name, len(body.Rows)
			}
			if runs := last[cf.ID]; len(runs) > 0 {
				jr := u.row(runs[0])
				line.LastRun = &jr
			}
			c.Configs = append(c.Configs, line)
		}
		d.Cards = append(d.Cards, c)
	}
	u.render(w, r, http.StatusOK, "components", "Components", "components", d)
}

// configRuns are the runs of each configuration (of one, when id is set) among project's
// newest component jobs ("": every project's), newest first.
func (u *UI) configRuns(r *http.Request, project, id string) (map[string][]job.Job, error) {
	jobs, err := u.d.Jobs.List(r.Context(), job.ListOptions{Kind: job.KindComponent, Project: project, Limit: maxRunScan})
	if err != nil {
		return nil, err
	}
	out := map[string][]job.Job{}
	for _, j := range jobs {
		if j.Component == nil || (id != "" && j.Component.Config.ID != id) {
			continue
		}
		out[j.Component.Config.ID] = append(out[j.Component.Config.ID], j)
	}
	return out, nil
}

type configRowView struct {
	ID, Name, Parameters, State string
	Disabled                    bool
}

type configVersionView struct {
	Version int
	Created string
	Body    string
	Current bool
}

type configRun struct {
	jobRow
	Version int
	Rows    string
}

type configData struct {
	Row         store.ConfigRow
	Name        string
	Updated     string
	Component   string // the component's id
	Image       string
	Shared      bool
	Usable      bool // the caller may still use its component
	Parameters  string
	Storage     string
	Rows        []configRowView
	State       string
	Credentials string // "" when the caller may not know
	Versions    []configVersionView
	Runs        []configRun
	RunsNote    string
	Run         string // the API's run URL, when the caller may run it
	Self        string
}

// handleConfig shows one configuration to whom may read it (another project's does not exist,
// as in the API): its parameters with "#" values shown sealed, its rows, its state, whether
// credentials are stored (never what they are), its versions, its runs, and Run.
func (u *UI) handleConfig(w http.ResponseWriter, r *http.Request) {
	p, ok := u.principal(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	row, err := u.d.Store.GetConfig(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		u.fail(w, r, http.StatusNotFound, "No configuration "+id+".")
		return
	}
	if err != nil {
		u.internal(w, r, "read the configuration", err)
		return
	}
	res := configResource(row)
	if !u.can(w, r, p, authz.ConfigRead, res) {
		return
	}
	d := configData{Row: row, Component: row.ComponentID, Updated: stamp(row.UpdatedAt),
		Self: "/ui/configs/" + url.PathEscape(row.ID)}
	var cfg spec.ComponentConfig
	if err := json.Unmarshal([]byte(row.Body), &cfg); err != nil {
		u.internal(w, r, "read the configuration", err)
		return
	}
	d.Name = cfg.Name
	d.Parameters = maskedJSON(cfg.Parameters)
	d.Storage = maskedJSON(cfg.Storage)
	d.State = prettyState(row.State)
	for _, rw := range cfg.Rows {
		v := configRowView{ID: rw.ID, Name: rw.Name, Disabled: rw.IsDisabled, Parameters: maskedJSON(rw.Parameters)}
		st, _, err := u.d.Store.GetRowState(r.Context(), row.ID, rw.ID)
		if err != nil {
			u.internal(w, r, "read a row's state", err)
			return
		}
		v.State = prettyState(st)
		d.Rows = append(d.Rows, v)
	}
	if comp, err := u.d.Store.GetComponentRow(r.Context(), row.ComponentID); err == nil && allowed(p, authz.ComponentRead, componentResource(comp)) {
		d.Usable, d.Shared = true, comp.Shared()
		var c spec.Component
		if json.Unmarshal([]byte(comp.Body), &c) == nil {
			d.Image = c.Image
		}
	}
	d.Credentials = u.credentials(r, p, row)
	versions, err := u.d.Store.ListConfigVersions(r.Context(), row.ID)
	if err != nil {
		u.internal(w, r, "list the configuration's versions", err)
		return
	}
	for _, v := range versions {
		d.Versions = append(d.Versions, configVersionView{Version: v.Version, Created: stamp(v.CreatedAt),
			Body: maskedBody(v.Body), Current: v.Version == row.Version})
	}
	runs, err := u.configRuns(r, row.Project, row.ID)
	if err != nil {
		u.internal(w, r, "list the configuration's runs", err)
		return
	}
	list := runs[row.ID]
	if len(list) > maxRuns {
		list = list[:maxRuns]
		d.RunsNote = "The latest " + itoa(maxRuns) + " runs."
	}
	for _, j := range list {
		cr := configRun{jobRow: u.row(j), Version: j.Component.ConfigVersion}
		var ids []string
		for _, rw := range j.Component.Rows {
			ids = append(ids, rw.ID)
		}
		cr.Rows = strings.Join(ids, ", ")
		d.Runs = append(d.Runs, cr)
	}
	if d.Usable && allowed(p, authz.ConfigRun, res) {
		d.Run = "/api/v1/configs/" + url.PathEscape(row.ID) + "/run"
	}
	title := row.ID
	if d.Name != "" {
		title = d.Name
	}
	u.render(w, r, http.StatusOK, "config", title+" · configuration", "components", d)
}

// credentials says whether a configuration's credentials are stored, and since when; never
// what they are ("" when the caller may not know).
func (u *UI) credentials(r *http.Request, p auth.Principal, row store.ConfigRow) string {
	if !allowed(p, authz.CredentialsRead, configResource(row)) {
		return ""
	}
	_, at, err := u.d.Store.GetCredentials(r.Context(), row.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "none stored"
	case err != nil:
		u.d.Log.Error("read credentials", "config", row.ID, "err", err)
		return "unknown (berth could not read them)"
	}
	return "stored (sealed) since " + stamp(at)
}

// maskedBody is a stored configuration body, indented, with its "#" values shown as sealed.
func maskedBody(body string) string {
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		return "(not JSON)"
	}
	return maskedJSON(v)
}

// maskedJSON is v as indented JSON with every secret ("#" key, or a sealed value) shown as
// [sealed] (or [hidden] when the store did not seal it), never its value.
func maskedJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	var generic any
	json.Unmarshal(b, &generic)
	out, _ := json.MarshalIndent(mask(generic, false), "", "  ")
	return string(out)
}

func mask(v any, secret bool) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = mask(x, strings.HasPrefix(k, "#"))
		}
		return m
	case []any:
		l := make([]any, len(t))
		for i, x := range t {
			l[i] = mask(x, secret)
		}
		return l
	case string:
		if store.IsSealed(t) {
			return "[sealed]"
		}
		if secret {
			return "[hidden]"
		}
		return t
	default:
		if secret && v != nil {
			return "[hidden]"
		}
		return v
	}
}

// prettyState is a stored state, indented ({} when there is none).
func prettyState(s string) string {
	if strings.TrimSpace(s) == "" {
		return "{}"
	}
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return s
	}
	out, _ := json.MarshalIndent(v, "", "  ")
	return string(out)
}
