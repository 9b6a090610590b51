package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/berthproject/berth/internal/authz"
	"github.com/berthproject/berth/internal/service"
	"github.com/berthproject/berth/internal/store"
)

// card is one service as the services page shows it.
type card struct {
	Name, Project, Package, Image string
	Status                        status
	Reason                        string
	Changed                       string
	Events                        []event
	CanStart, CanStop             bool
	Start, Stop, Open             string
	Port                          int
	OnDemand                      bool
	Shutdown                      string
}

type event struct {
	At, Kind, State, Reason string
}

type servicesData struct {
	Cards   []card
	Project string
}

// serviceStatus is a service's dot, as Datagrok's cards show them: green running, red error,
// blinking grey while something is on the way (its image building, a start or a stop), no dot
// when stopped. The word is always there beside it.
func serviceStatus(s service.Service) (status, string) {
	switch s.ImageState {
	case service.ImageError:
		return status{"err", "image error"}, s.ImageReason
	case service.ImagePendingValidation, service.ImageValidating:
		return status{"pending", "building"}, ""
	}
	switch s.ContainerState {
	case service.Started:
		return status{"ok", "running"}, ""
	case service.Error:
		return status{"err", "error"}, s.ContainerReason
	case service.PendingStart, service.Starting:
		return status{"pending", "starting"}, ""
	case service.PendingStop:
		return status{"pending", "stopping"}, ""
	case service.SystemStopped:
		return status{"", "stopped (idle)"}, ""
	case service.Stopped, "":
		return status{"", "stopped"}, ""
	}
	return status{"pending", strings.ToLower(s.ContainerState)}, ""
}

// handleServices shows the services the caller may see as cards (as GET /api/v1/services
// lists them: its project's, or every project's for an admin, who may narrow it with
// ?project=).
func (u *UI) handleServices(w http.ResponseWriter, r *http.Request) {
	p, ok := u.principal(w, r)
	if !ok {
		return
	}
	project := strings.TrimSpace(r.URL.Query().Get("project"))
	if !u.can(w, r, p, authz.ServiceRead, authz.Resource{Kind: "project", ID: project, Project: project}) {
		return
	}
	list, err := u.d.Services.List(r.Context())
	if err != nil {
		u.d.Log.Error("list services", "err", err)
		u.fail(w, r, http.StatusInternalServerError, "berth could not list the services.")
		return
	}
	slices.SortFunc(list, func(a, b service.Service) int { return strings.Compare(a.Name, b.Name) })
	d := servicesData{Project: project}
	for _, sv := range list {
		if !authz.Visible(p, sv.Project) || (project != "" && sv.Project != project) {
			continue
		}
		res := authz.Resource{Kind: "service", ID: sv.Name, Project: sv.Project}
		if authz.Can(p, authz.ServiceRead, res) != nil {
			continue
		}
		full, err := u.d.Services.Get(r.Context(), sv.Name)
		if err == nil {
			sv.Events = full.Events
		}
		d.Cards = append(d.Cards, u.card(sv, allowed(p, authz.ServiceOperate, res), allowed(p, authz.ServiceUse, res)))
	}
	u.render(w, r, http.StatusOK, "services", "Services", "services", d)
}

// maxEvents is how many of a service's latest transitions its card lists.
const maxEvents = 20

func (u *UI) card(sv service.Service, operate, use bool) card {
	st, reason := serviceStatus(sv)
	c := card{Name: sv.Name, Project: projectOr(sv.Project), Package: sv.Package, Image: sv.Image, Status: st, Reason: reason,
		Changed: stamp(sv.ContainerChangedAt), Port: sv.Port, OnDemand: sv.Container.OnDemand}
	if sv.Container.ShutdownTimeout != nil {
		c.Shutdown = human(minutes(*sv.Container.ShutdownTimeout))
	}
	base := "/api/v1/services/" + url.PathEscape(sv.Name)
	running := sv.ContainerState == service.Started || sv.ContainerState == service.Starting || sv.ContainerState == service.PendingStart
	if operate {
		if sv.ImageState == service.ImageReady && !running && sv.ContainerState != service.PendingStop {
			c.CanStart, c.Start = true, base+"/start"
		}
		if running {
			c.CanStop, c.Stop = true, base+"/stop"
		}
	}
	if use && sv.ImageState == service.ImageReady {
		c.Open = "/proxy/" + url.PathEscape(sv.Name) + "/"
	}
	evs := sv.Events
	if len(evs) > maxEvents {
		evs = evs[len(evs)-maxEvents:]
	}
	for i := len(evs) - 1; i >= 0; i-- { // newest first
		e := evs[i]
		c.Events = append(c.Events, event{At: stamp(e.At), Kind: e.Kind, State: e.State, Reason: e.Reason})
	}
	return c
}

func projectOr(p string) string {
	if p == "" {
		return store.DefaultProject
	}
	return p
}

func minutes(m float64) time.Duration { return time.Duration(m * float64(time.Minute)) }

// serviceData is a service's own page.
type serviceData struct {
	C          card
	Live       string
	Rebuild    string
	Stream     string // the live logs' URL ("" when the container is not running)
	LogsText   string // the logs as text
	BuildLog   string
	BuildText  string
	BuildNote  string
	Context    string
	Health     string
	Warnings   []string
	Activity   string
	Connection int64
}

// buildLogTail is how many lines of a service's build log its page shows.
const buildLogTail = 300

// handleService shows one service: its state and every transition kept, its live logs, its
// build log, and buttons to start, stop and rebuild it, download its build context and open
// its app; to whom may read it (another project's service does not exist).
func (u *UI) handleService(w http.ResponseWriter, r *http.Request) {
	p, ok := u.principal(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	sv, err := u.d.Services.Get(r.Context(), name)
	if errors.Is(err, service.ErrNotFound) {
		u.fail(w, r, http.StatusNotFound, "No service "+name+".")
		return
	}
	if err != nil {
		u.internal(w, r, "read the service", err)
		return
	}
	res := authz.Resource{Kind: "service", ID: sv.Name, Project: sv.Project}
	if !u.can(w, r, p, authz.ServiceRead, res) {
		return
	}
	operate := allowed(p, authz.ServiceOperate, res)
	c := u.card(sv, operate, allowed(p, authz.ServiceUse, res))
	if len(sv.Events) > 0 { // every transition kept, not the card's latest few
		c.Events = nil
		for i := len(sv.Events) - 1; i >= 0; i-- {
			e := sv.Events[i]
			c.Events = append(c.Events, event{At: stamp(e.At), Kind: e.Kind, State: e.State, Reason: e.Reason})
		}
	}
	base := "/api/v1/services/" + url.PathEscape(sv.Name)
	d := serviceData{C: c, Live: "/ui/services/" + url.PathEscape(sv.Name), Health: sv.HealthPath, Warnings: sv.Warnings,
		Connection: sv.ActiveConnections, LogsText: base + "/logs?tail=1000", BuildLog: base + "/build-log", Context: base + "/context"}
	if sv.LastActivity != nil {
		d.Activity = stamp(*sv.LastActivity)
	}
	if operate && sv.ImageState != service.ImagePendingValidation && sv.ImageState != service.ImageValidating {
		d.Rebuild = base + "/rebuild"
	}
	if sv.ContainerState == service.Started {
		d.Stream = base + "/logs?follow=1&tail=500"
	}
	d.BuildText, d.BuildNote = tailFile(u.d.Services.BuildLogPath(sv.Name), buildLogTail)
	u.render(w, r, http.StatusOK, "service", sv.Name+" · service", "services", d)
}

// tailFile is the last n lines of a file, and a note on what is shown.
func tailFile(path string, n int) (string, string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "No build log is kept yet."
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		return strings.Join(lines[len(lines)-n:], "\n"), fmt.Sprintf("The last %d of %d lines.", n, len(lines))
	}
	return strings.Join(lines, "\n"), ""
}
