package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/berthproject/berth/internal/authz"
	"github.com/berthproject/berth/internal/component"
	"github.com/berthproject/berth/internal/datadir"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/spec"
	"github.com/berthproject/berth/internal/storage"
	"github.com/berthproject/berth/internal/store"
)

// routesComponents adds components, configurations and storage (when the server has them).
func (s *Server) routesComponents(api router) {
	if s.d.Store == nil || s.d.Storage == nil {
		return
	}
	api.HandleFunc("POST /api/v1/components", s.handleRegisterComponent)
	api.HandleFunc("GET /api/v1/components", s.handleListComponents)
	api.HandleFunc("POST /api/v1/configs", s.handleSaveConfig)
	api.HandleFunc("GET /api/v1/configs", s.handleListConfigs)
	api.HandleFunc("GET /api/v1/configs/{id}", s.handleGetConfig)
	api.HandleFunc("GET /api/v1/configs/{id}/state", s.handleGetState)
	api.HandleFunc("POST /api/v1/configs/{id}/run", s.handleRunConfig)
	api.HandleFunc("PUT /api/v1/configs/{id}/credentials", s.handlePutCredentials)
	api.HandleFunc("GET /api/v1/configs/{id}/credentials", s.handleGetCredentials)
	api.HandleFunc("DELETE /api/v1/configs/{id}/credentials", s.handleDeleteCredentials)
	api.HandleFunc("POST /api/v1/components/{id}/actions/{action}", s.handleSyncAction)

	s.routesStorage(api)
}

func (s *Server) validationError(w http.ResponseWriter, err error) bool {
	var ve *spec.ValidationError
	if errors.As(err, &ve) {
		writeProblems(w, "invalid", ve)
		return true
	}
	if errors.Is(err, storage.ErrInvalid) {
		writeError(w, http.StatusUnprocessableEntity, "invalid", err.Error(), "")
		return true
	}
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", err.Error(), "")
		return true
	}
	return false
}

func (s *Server) internal(w http.ResponseWriter, what string, err error) {
	s.d.Log.Error(what, "err", err)
	writeError(w, http.StatusInternalServerError, "internal", what+" failed", "")
}

func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the body is larger than %d bytes", max), "")
		return nil, false
	}
	return b, true
}

// handleRegisterComponent registers a component private to the caller's project (a project
// admin's), or with ?shared=true one every project may use (an admin's). A component id is
// server-wide: one another project holds is 409.
func (s *Server) handleRegisterComponent(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	var shared bool
	switch v := r.URL.Query().Get("shared"); v {
	case "", "false", "0":
	case "true", "1":
		shared = true
	default:
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("shared %q: allowed: true, false", v), "shared")
		return
	}
	res := authz.Resource{Kind: "component", Project: p.Project, Shared: shared}
	if shared {
		res.Project = ""
	}
	if !s.can(w, r, authz.ComponentRegister, res) {
		return
	}
	body, ok := readBody(w, r, 1<<20)
	if !ok {
		return
	}
	c, err := spec.ParseComponent(body, "")
	if err != nil {
		s.validationError(w, err)
		return
	}
	res.ID, res.Component = c.ID, c.ID
	if !s.can(w, r, authz.ComponentRegister, res) {
		return
	}
	if c.ForwardToken && !s.d.AllowForwardToken {
		writeError(w, http.StatusUnprocessableEntity, "policy_violation",
			"forward_token: giving the caller's token to a component needs the server's --allow-forward-token", "forward_token")
		return
	}
	if s.d.ImageExists != nil {
		if err := s.d.ImageExists(r.Context(), c.Image); err != nil {
			writeError(w, http.StatusUnprocessableEntity, "invalid", fmt.Sprintf("image %s: %v (berth never pulls: build it first, e.g. berth component register --build DIR)", c.Image, err), "image")
			return
		}
	}
	norm, _ := json.Marshal(c)
	row := store.ComponentRow{ID: c.ID, Project: res.Project, Body: string(norm)}
	err = s.d.Store.RegisterComponent(r.Context(), row.Project, row.ID, row.Body)
	if errors.Is(err, store.ErrConflict) {
		writeError(w, http.StatusConflict, "conflict", err.Error()+"; choose another id", "id")
		return
	}
	if err != nil {
		s.internal(w, "register component", err)
		return
	}
	writeJSON(w, http.StatusCreated, componentView(row))
}

// componentView is a component as the API shows it: its definition, with the project it is
// private to ("" and shared: true for a shared one).
func componentView(row store.ComponentRow) map[string]any {
	v := map[string]any{}
	json.Unmarshal([]byte(row.Body), &v)
	v["project"], v["shared"] = row.Project, row.Shared()
	return v
}

func componentResource(row store.ComponentRow) authz.Resource {
	return authz.Resource{Kind: "component", ID: row.ID, Project: row.Project, Shared: row.Shared(), Component: row.ID}
}

// handleListComponents lists the components the caller may use: the shared ones and its
// project's (an admin: all).
func (s *Server) handleListComponents(w http.ResponseWriter, r *http.Request) {
	rows, err := s.d.Store.ListComponentRows(r.Context())
	if err != nil {
		s.internal(w, "list components", err)
		return
	}
	p := principal(r)
	out := []map[string]any{}
	for _, row := range rows {
		if authz.Can(p, authz.ComponentRead, componentResource(row)) == nil {
			out = append(out, componentView(row))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"components": out})
}

// componentFor reads the component id if the caller may do a on it; it answers the error
// itself (404 for another project's private component, as for one that does not exist).
func (s *Server) componentFor(w http.ResponseWriter, r *http.Request, id string, a authz.Action) (store.ComponentRow, *spec.Component, bool) {
	row, err := s.d.Store.GetComponentRow(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no component "+id, "id")
		return row, nil, false
	}
	if err != nil {
		s.internal(w, "read component", err)
		return row, nil, false
	}
	if !s.can(w, r, a, componentResource(row)) {
		return row, nil, false
	}
	var c spec.Component
	if err := json.Unmarshal([]byte(row.Body), &c); err != nil {
		s.internal(w, "read component", err)
		return row, nil, false
	}
	return row, &c, true
}

// usableComponent reads a component the caller may use (a shared one, or one of its
// project's); store.ErrNotFound for any other, as for one that does not exist.
func (s *Server) usableComponent(r *http.Request, id string) (*spec.Component, error) {
	row, err := s.d.Store.GetComponentRow(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if authz.Can(principal(r), authz.ComponentRead, componentResource(row)) != nil {
		return nil, fmt.Errorf("component %s: %w", id, store.ErrNotFound)
	}
	var c spec.Component
	if err := json.Unmarshal([]byte(row.Body), &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// configFor reads the configuration of the path's id if the caller may do a on it; it answers
// the error itself (404 for another project's configuration, as for one that does not exist).
func (s *Server) configFor(w http.ResponseWriter, r *http.Request, a authz.Action) (store.ConfigRow, bool) {
	id := r.PathValue("id")
	row, err := s.d.Store.GetConfig(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no configuration "+id, "id")
		return row, false
	}
	if err != nil {
		s.internal(w, "read config", err)
		return row, false
	}
	return row, s.can(w, r, a, configResource(row))
}

func configResource(row store.ConfigRow) authz.Resource {
	return authz.Resource{Kind: "configuration", ID: row.ID, Project: row.Project, Component: row.ComponentID}
}

func (s *Server) handleSaveConfig(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, 4<<20)
	if !ok {
		return
	}
	var head struct {
		Component string `json:"component"`
	}
	json.Unmarshal(body, &head)
	// A configuration may use a shared component or one of its project's: any other is
	// "no registered component", as one that does not exist.
	comp, err := s.usableComponent(r, head.Component)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.internal(w, "read component", err)
		return
	}
	c, err := spec.ParseComponentConfig(body, "", comp)
	if err != nil {
		s.validationError(w, err)
		return
	}
	// A new configuration is the caller's project's; a new version stays in its configuration's.
	p := principal(r)
	res := authz.Resource{Kind: "configuration", ID: c.ID, Project: p.Project, Component: c.Component}
	if old, err := s.d.Store.GetConfig(r.Context(), c.ID); err == nil {
		res.Project = old.Project
		var d *authz.Denied
		if err := authz.Can(p, authz.ConfigWrite, res); errors.As(err, &d) && d.Status == http.StatusNotFound {
			writeError(w, http.StatusConflict, "conflict", fmt.Sprintf("configuration id %s is taken in another project; choose another id", c.ID), "id")
			return
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		s.internal(w, "read config", err)
		return
	}
	if !s.can(w, r, authz.ConfigWrite, res) {
		return
	}
	norm, _ := json.Marshal(c)
	version, err := s.d.Store.SaveConfig(r.Context(), res.Project, c.ID, c.Component, string(norm))
	if errors.Is(err, store.ErrConflict) {
		writeError(w, http.StatusConflict, "conflict", err.Error()+"; choose another id", "id")
		return
	}
	if err != nil {
		s.internal(w, "save config", err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"config": c, "version": version})
}

func configView(row store.ConfigRow) map[string]any {
	return map[string]any{"config": json.RawMessage(row.Body), "project": row.Project, "version": row.Version,
		"state": json.RawMessage(row.State), "state_version": row.StateVersion, "updated_at": row.UpdatedAt}
}

// handleListConfigs lists the caller's project's configurations (an admin: every project's,
// or ?project='s), of one component with ?component=.
func (s *Server) handleListConfigs(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	project := r.URL.Query().Get("project")
	if project == "" && !authz.Visible(p, anyProject) {
		project = p.Project
	}
	if project != "" && !s.can(w, r, authz.ConfigRead, authz.Resource{Kind: "project", ID: project, Project: project}) {
		return
	}
	rows, err := s.d.Store.ListConfigs(r.Context(), project, r.URL.Query().Get("component"))
	if err != nil {
		s.internal(w, "list configs", err)
		return
	}
	out := []map[string]any{}
	for _, row := range rows {
		if authz.Can(p, authz.ConfigRead, configResource(row)) == nil {
			out = append(out, configView(row))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"configs": out})
}

func (s *Server) handleGetConfig(w http.ResponseWriter, r *http.Request) {
	row, ok := s.configFor(w, r, authz.ConfigRead)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, configView(row))
}

func (s *Server) handleGetState(w http.ResponseWriter, r *http.Request) {
	row, ok := s.configFor(w, r, authz.ConfigRead)
	if !ok {
		return
	}
	state := row.State
	if rowID := r.URL.Query().Get("row"); rowID != "" {
		var err error
		if state, _, err = s.d.Store.GetRowState(r.Context(), row.ID, rowID); err != nil {
			s.internal(w, "read row state", err)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, state+"\n")
}

// handlePutCredentials stores a configuration's OAuth-style credentials, sealed with the
// data dir's key. They are given to its runs as authorization.oauth_api.credentials and never
// returned by the API again.
func (s *Server) handlePutCredentials(w http.ResponseWriter, r *http.Request) {
	row, ok := s.configFor(w, r, authz.CredentialsWrite)
	if !ok {
		return
	}
	if s.d.Sealer == nil {
		writeError(w, http.StatusNotImplemented, "unsupported", "this server has no key to seal credentials with", "")
		return
	}
	id := row.ID
	body, ok := readBody(w, r, 1<<20)
	if !ok {
		return
	}
	var creds map[string]any
	if err := json.Unmarshal(body, &creds); err != nil || creds == nil {
		writeError(w, http.StatusBadRequest, "invalid", "the body must be a JSON object: the credentials as the component reads them in authorization.oauth_api.credentials", "credentials")
		return
	}
	sealed, err := s.d.Sealer.Seal(body)
	if err != nil {
		s.internal(w, "seal credentials", err)
		return
	}
	if err := s.d.Store.PutCredentials(r.Context(), id, sealed); err != nil {
		s.internal(w, "store credentials", err)
		return
	}
	s.d.Log.Info("stored credentials", "config", id)
	writeJSON(w, http.StatusOK, map[string]any{"config": id, "stored": true})
}

// handleGetCredentials says whether credentials are stored, never what they are.
func (s *Server) handleGetCredentials(w http.ResponseWriter, r *http.Request) {
	row, ok := s.configFor(w, r, authz.CredentialsRead)
	if !ok {
		return
	}
	id := row.ID
	_, at, err := s.d.Store.GetCredentials(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeJSON(w, http.StatusOK, map[string]any{"config": id, "stored": false})
		return
	}
	if err != nil {
		s.internal(w, "read credentials", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"config": id, "stored": true, "updated_at": at})
}

func (s *Server) handleDeleteCredentials(w http.ResponseWriter, r *http.Request) {
	row, ok := s.configFor(w, r, authz.CredentialsDelete)
	if !ok {
		return
	}
	if err := s.d.Store.DeleteCredentials(r.Context(), row.ID); err != nil {
		s.internal(w, "remove credentials", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleRunConfig runs a configuration: the job is its configuration's project's.
func (s *Server) handleRunConfig(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	row, ok := s.configFor(w, r, authz.ConfigRun)
	if !ok {
		return
	}
	comp, err := s.usableComponent(r, row.ComponentID)
	if err != nil {
		if !s.validationError(w, err) {
			s.internal(w, "read component", err)
		}
		return
	}
	var cfg spec.ComponentConfig
	json.Unmarshal([]byte(row.Body), &cfg)
	mode := r.URL.Query().Get("mode")
	if mode != "" && mode != "run" && mode != "debug" {
		writeError(w, http.StatusUnprocessableEntity, "invalid", fmt.Sprintf("mode %q: allowed: run (the default), debug", mode), "mode")
		return
	}
	cr := &job.ComponentRun{Component: *comp, Config: cfg, ConfigVersion: row.Version, Action: "run", Mode: mode,
		TokenID: p.TokenID, TokenName: p.Name, Scope: p.Scope}
	if len(cfg.Rows) > 0 {
		rows, err := cfg.RowsToRun(r.URL.Query().Get("row"))
		if err != nil {
			s.validationError(w, err)
			return
		}
		if len(rows) == 0 {
			writeError(w, http.StatusUnprocessableEntity, "invalid", fmt.Sprintf("configuration %s has no enabled row (run one by id: ?row=ID)", cfg.ID), "rows")
			return
		}
		cr.Rows = rows
	} else if r.URL.Query().Get("row") != "" {
		writeError(w, http.StatusUnprocessableEntity, "invalid", fmt.Sprintf("configuration %s has no rows", cfg.ID), "row")
		return
	}
	if cfg.Processors != nil {
		for stage, list := range map[string][]datadir.Processor{"before": cfg.Processors.Before, "after": cfg.Processors.After} {
			for i, proc := range list {
				pc, err := s.usableComponent(r, proc.Definition.Component)
				if err != nil {
					writeError(w, http.StatusUnprocessableEntity, "invalid", fmt.Sprintf("processor %s: %v", proc.Definition.Component, err),
						fmt.Sprintf("processors.%s[%d].definition.component", stage, i))
					return
				}
				pr := job.ProcessorRun{Component: *pc, Parameters: proc.Parameters}
				if stage == "before" {
					cr.Before = append(cr.Before, pr)
				} else {
					cr.After = append(cr.After, pr)
				}
			}
		}
	}
	sub := job.Submission{Owner: p.Name, Project: row.Project, Component: cr}
	if comp.ForwardToken {
		if !s.d.AllowForwardToken {
			writeError(w, http.StatusUnprocessableEntity, "policy_violation", "forward_token is not allowed on this server", "forward_token")
			return
		}
		sub.Token, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	j, err := s.d.Jobs.Submit(r.Context(), sub)
	if err != nil {
		s.submitError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, j)
}

// handleSyncAction runs a component's sync action: the component starts with action set, no
// input or output mapping, at most 30 s (image preparation not counted), and its stdout, which
// must be JSON, is the answer. Body: {"parameters": {...}} (optional).
func (s *Server) handleSyncAction(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	_, comp, ok := s.componentFor(w, r, r.PathValue("id"), authz.ComponentAction)
	if !ok {
		return
	}
	action := r.PathValue("action")
	allowed := false
	for _, a := range comp.Actions {
		allowed = allowed || a == action
	}
	if !allowed {
		writeError(w, http.StatusUnprocessableEntity, "invalid", fmt.Sprintf("component %s has no sync action %q (allowed: %s)",
			comp.ID, action, strings.Join(comp.Actions, ", ")), "action")
		return
	}
	var req struct {
		Parameters map[string]any `json:"parameters"`
	}
	if r.ContentLength != 0 {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "body: {\"parameters\": {...}}", "")
			return
		}
	}
	// "#" values are sealed before the job is stored, as a configuration's are.
	params, err := s.sealParams(req.Parameters)
	if err != nil {
		s.internal(w, "seal # values", err)
		return
	}
	cfg := spec.ComponentConfig{ID: comp.ID + "-" + action, Component: comp.ID, Parameters: params}
	j, err := s.d.Jobs.Submit(r.Context(), job.Submission{Owner: p.Name, Project: p.Project,
		Component: &job.ComponentRun{Component: *comp, Config: cfg, Action: action, Scope: p.Scope}})
	if err != nil {
		s.submitError(w, err)
		return
	}
	var stdout strings.Builder
	if err := s.d.Jobs.Logs(r.Context(), j.ID, true, func(c job.LogChunk) error {
		if c.Stream == "stdout" {
			stdout.WriteString(c.Text)
		}
		return nil
	}); err != nil {
		writeError(w, http.StatusGatewayTimeout, "interrupted", "the action did not finish: "+err.Error(), "")
		return
	}
	final, err := s.d.Jobs.Get(context.WithoutCancel(r.Context()), j.ID)
	if err != nil {
		s.internal(w, "read job", err)
		return
	}
	switch {
	case final.State == job.StateSucceeded:
	case final.Reason == job.ReasonTimeout:
		writeError(w, http.StatusGatewayTimeout, "timeout", fmt.Sprintf("the action ran longer than %s (job %s)", component.SyncActionTimeout, j.ID), "")
		return
	case final.Reason == job.ReasonUserError:
		writeError(w, http.StatusBadRequest, "action_failed", final.Message, "")
		return
	default:
		writeError(w, http.StatusBadGateway, "action_failed", fmt.Sprintf("%s (job %s)", final.Message, j.ID), "")
		return
	}
	out := strings.TrimSpace(stdout.String())
	if !json.Valid([]byte(out)) {
		writeError(w, http.StatusBadGateway, "bad_action_output", fmt.Sprintf("the action's output is not JSON (job %s)", j.ID), "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Berth-Job", j.ID)
	io.WriteString(w, out+"\n")
}

// sealParams is parameters with every "#" value sealed (store.SealHashParams).
func (s *Server) sealParams(params map[string]any) (map[string]any, error) {
	if params == nil {
		return nil, nil
	}
	b, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	sealed, err := s.d.Store.SealHashParams(string(b))
	if err != nil {
		return nil, err
	}
	var out map[string]any
	err = json.Unmarshal([]byte(sealed), &out)
	return out, err
}
