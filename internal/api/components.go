package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/berthproject/berth/internal/auth"
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

func (s *Server) handleRegisterComponent(w http.ResponseWriter, r *http.Request) {
	if p, _ := auth.FromContext(r.Context()); !p.IsAdmin() {
		writeError(w, http.StatusForbidden, "forbidden", "registering a component needs an admin token", "")
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
	if err := s.d.Store.PutComponent(r.Context(), c.ID, string(norm)); err != nil {
		s.internal(w, "register component", err)
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

func (s *Server) handleListComponents(w http.ResponseWriter, r *http.Request) {
	bodies, err := s.d.Store.ListComponents(r.Context())
	if err != nil {
		s.internal(w, "list components", err)
		return
	}
	out := []json.RawMessage{}
	for _, b := range bodies {
		out = append(out, json.RawMessage(b))
	}
	writeJSON(w, http.StatusOK, map[string]any{"components": out})
}

func (s *Server) component(ctx context.Context, id string) (*spec.Component, error) {
	body, err := s.d.Store.GetComponent(ctx, id)
	if err != nil {
		return nil, err
	}
	var c spec.Component
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		return nil, err
	}
	return &c, nil
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
	comp, err := s.component(r.Context(), head.Component)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.internal(w, "read component", err)
		return
	}
	c, err := spec.ParseComponentConfig(body, "", comp)
	if err != nil {
		s.validationError(w, err)
		return
	}
	norm, _ := json.Marshal(c)
	version, err := s.d.Store.PutConfig(r.Context(), c.ID, c.Component, string(norm))
	if err != nil {
		s.internal(w, "save config", err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"config": c, "version": version})
}

func configView(row store.ConfigRow) map[string]any {
	return map[string]any{"config": json.RawMessage(row.Body), "version": row.Version,
		"state": json.RawMessage(row.State), "state_version": row.StateVersion, "updated_at": row.UpdatedAt}
}

func (s *Server) handleListConfigs(w http.ResponseWriter, r *http.Request) {
	rows, err := s.d.Store.ListConfigs(r.Context(), r.URL.Query().Get("component"))
	if err != nil {
		s.internal(w, "list configs", err)
		return
	}
	out := []map[string]any{}
	for _, row := range rows {
		out = append(out, configView(row))
	}
	writeJSON(w, http.StatusOK, map[string]any{"configs": out})
}

func (s *Server) handleGetConfig(w http.ResponseWriter, r *http.Request) {
	row, err := s.d.Store.GetConfig(r.Context(), r.PathValue("id"))
	if err != nil {
		if !s.validationError(w, err) {
			s.internal(w, "read config", err)
		}
		return
	}
	writeJSON(w, http.StatusOK, configView(row))
}

func (s *Server) handleGetState(w http.ResponseWriter, r *http.Request) {
	row, err := s.d.Store.GetConfig(r.Context(), r.PathValue("id"))
	if err != nil {
		if !s.validationError(w, err) {
			s.internal(w, "read config", err)
		}
		return
	}
	state := row.State
	if rowID := r.URL.Query().Get("row"); rowID != "" {
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
// returned by the API again. Admin only (configurations have no owner yet).
func (s *Server) handlePutCredentials(w http.ResponseWriter, r *http.Request) {
	if p, _ := auth.FromContext(r.Context()); !p.IsAdmin() {
		writeError(w, http.StatusForbidden, "forbidden", "storing credentials needs an admin token", "")
		return
	}
	if s.d.Sealer == nil {
		writeError(w, http.StatusNotImplemented, "unsupported", "this server has no key to seal credentials with", "")
		return
	}
	id := r.PathValue("id")
	if _, err := s.d.Store.GetConfig(r.Context(), id); err != nil {
		if !s.validationError(w, err) {
			s.internal(w, "read config", err)
		}
		return
	}
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
	id := r.PathValue("id")
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
	if p, _ := auth.FromContext(r.Context()); !p.IsAdmin() {
		writeError(w, http.StatusForbidden, "forbidden", "removing credentials needs an admin token", "")
		return
	}
	if err := s.d.Store.DeleteCredentials(r.Context(), r.PathValue("id")); err != nil {
		s.internal(w, "remove credentials", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleRunConfig(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	row, err := s.d.Store.GetConfig(r.Context(), r.PathValue("id"))
	if err != nil {
		if !s.validationError(w, err) {
			s.internal(w, "read config", err)
		}
		return
	}
	comp, err := s.component(r.Context(), row.ComponentID)
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
		TokenID: p.TokenID, TokenName: p.Name}
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
				pc, err := s.component(r.Context(), proc.Definition.Component)
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
	sub := job.Submission{Owner: p.Name, Component: cr}
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
	p, _ := auth.FromContext(r.Context())
	comp, err := s.component(r.Context(), r.PathValue("id"))
	if err != nil {
		if !s.validationError(w, err) {
			s.internal(w, "read component", err)
		}
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
	cfg := spec.ComponentConfig{ID: comp.ID + "-" + action, Component: comp.ID, Parameters: req.Parameters}
	j, err := s.d.Jobs.Submit(r.Context(), job.Submission{Owner: p.Name,
		Component: &job.ComponentRun{Component: *comp, Config: cfg, Action: action}})
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
