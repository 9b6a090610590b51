package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/authz"
	"github.com/berthproject/berth/internal/datadir"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/store"
)

// DefaultPageSize is how many jobs one page of the list shows.
const DefaultPageSize = 50

var jobStates = []job.State{job.StateQueued, job.StatePreparing, job.StateRunning, job.StateFinishing, job.StateCancelling,
	job.StateSucceeded, job.StateFailed, job.StateCancelled}

var jobKinds = []string{job.KindBlock, job.KindComponent}

// jobFilter is the list's query: ?state=&kind=&project=&q=&page=.
type jobFilter struct {
	State, Kind, Project, Q string
	Page                    int
}

func (f jobFilter) url(page int) string {
	v := url.Values{}
	for k, s := range map[string]string{"state": f.State, "kind": f.Kind, "project": f.Project, "q": f.Q} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	if len(v) == 0 {
		return "/ui/jobs"
	}
	return "/ui/jobs?" + v.Encode()
}

// jobRow is one line of the list.
type jobRow struct {
	ID, Name, Kind, Project, Owner, Created, Duration string
	Status                                            status
}

type jobsData struct {
	Filter     jobFilter
	States     []job.State
	Kinds      []string
	Rows       []jobRow
	Self       string
	Prev, Next string
	Problem    string // a filter the list could not use, said instead of a list
}

func (u *UI) row(j job.Job) jobRow {
	return jobRow{ID: j.ID, Name: j.Name, Kind: j.Kind, Project: jobProject(j), Owner: j.Owner,
		Created: stamp(j.CreatedAt), Duration: u.duration(j), Status: jobStatus(j.State)}
}

// duration is how long the job ran (so far, while it runs); "" before it started.
func (u *UI) duration(j job.Job) string {
	if j.StartedAt == nil {
		return ""
	}
	end := u.d.Now()
	if j.FinishedAt != nil {
		end = *j.FinishedAt
	}
	return human(end.Sub(*j.StartedAt))
}

// jobProject is the project owning j: the default project for a job stored before projects.
func jobProject(j job.Job) string {
	if j.Project == "" {
		return store.DefaultProject
	}
	return j.Project
}

// handleJobs lists jobs as GET /api/v1/jobs does: the caller's project, or every project for
// whom sees them all (who may narrow it to one); filtered on the server, so it works without
// JavaScript.
func (u *UI) handleJobs(w http.ResponseWriter, r *http.Request) {
	p, ok := u.principal(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := jobFilter{State: q.Get("state"), Kind: q.Get("kind"), Project: strings.TrimSpace(q.Get("project")), Q: strings.TrimSpace(q.Get("q")), Page: 1}
	d := jobsData{States: jobStates, Kinds: jobKinds}
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 1 {
		f.Page = n
	}
	d.Filter = f
	var o job.ListOptions
	switch {
	case f.State != "" && !knownState(f.State):
		d.Problem = fmt.Sprintf("There is no state %q.", f.State)
	case f.Kind != "" && f.Kind != job.KindBlock && f.Kind != job.KindComponent:
		d.Problem = fmt.Sprintf("There is no kind %q.", f.Kind)
	}
	o.State, o.Kind, o.Text, o.Project = job.State(f.State), f.Kind, f.Q, f.Project
	if o.Project == "" && !authz.Visible(p, anyProject) {
		o.Project = p.Project
	}
	if o.Project != "" && !u.can(w, r, p, authz.JobRead, authz.Resource{Kind: "project", ID: o.Project, Project: o.Project}) {
		return
	}
	size := u.d.PageSize
	o.Limit, o.Offset = size+1, (f.Page-1)*size
	if d.Problem == "" {
		jobs, err := u.d.Jobs.List(r.Context(), o)
		if err != nil {
			u.d.Log.Error("list jobs", "err", err)
			u.fail(w, r, http.StatusInternalServerError, "berth could not list the jobs.")
			return
		}
		if len(jobs) > size {
			jobs = jobs[:size]
			d.Next = f.url(f.Page + 1)
		}
		for _, j := range jobs {
			d.Rows = append(d.Rows, u.row(j))
		}
	}
	if f.Page > 1 {
		d.Prev = f.url(f.Page - 1)
	}
	d.Self = f.url(f.Page)
	u.render(w, r, http.StatusOK, "jobs", "Jobs", "jobs", d)
}

func knownState(s string) bool {
	for _, a := range jobStates {
		if string(a) == s {
			return true
		}
	}
	return false
}

// jobData is the job page.
type jobData struct {
	J         job.Job
	Row       jobRow
	Terminal  bool
	CanCancel bool
	Timings   []timing
	TotalMS   float64
	Image     imageInfo
	Log       string
	LogNote   string
	Follow    string // the SSE URL the script follows ("" once the job ended)
	Outputs   []output
	OutNote   string
	Spec      string
	Started   string
	Finished  string
	Download  string // the whole log as text
	Rerun     string // the body to POST to /api/v1/jobs to run the same spec again ("": no button)
	RerunNote string // why there is no re-run button, when the caller could submit
}

type timing struct {
	job.StageTiming
	Started string
}

type imageInfo struct {
	Ref, How, BuildLog string
}

type output struct {
	Path, Size, URL string
}

// logTail is how many lines of the log the page shows (and the live log starts from).
const logTail = 1000

// handleJob shows one job: its stages, image, log, outputs and spec; to whom the API would
// show it (another project's job does not exist).
func (u *UI) handleJob(w http.ResponseWriter, r *http.Request) {
	p, ok := u.principal(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	j, err := u.d.Jobs.Get(r.Context(), id)
	if errors.Is(err, job.ErrNotFound) {
		u.fail(w, r, http.StatusNotFound, "No job "+id+".")
		return
	}
	if err != nil {
		u.d.Log.Error("get job", "job", id, "err", err)
		u.fail(w, r, http.StatusInternalServerError, "berth could not read the job.")
		return
	}
	res := authz.Resource{Kind: "job", ID: j.ID, Project: jobProject(j), Owner: j.Owner}
	if !u.can(w, r, p, authz.JobRead, res) {
		return
	}
	d := jobData{J: j, Row: u.row(j), Terminal: j.State.Terminal(), Started: stampPtr(j.StartedAt), Finished: stampPtr(j.FinishedAt)}
	d.CanCancel = !d.Terminal && allowed(p, authz.JobCancel, res)
	for _, t := range j.Timings {
		d.Timings = append(d.Timings, timing{StageTiming: t, Started: stamp(t.StartedAt)})
		d.TotalMS += t.DurationMS
	}
	d.Image = u.image(p, j)
	d.Log, d.LogNote = u.logText(r, j)
	if !d.Terminal {
		d.Follow = fmt.Sprintf("/api/v1/jobs/%s/logs?follow=1&tail=%d", url.PathEscape(j.ID), logTail)
	}
	d.Outputs, d.OutNote = u.outputs(j)
	d.Spec = specText(j)
	d.Download = "/ui/jobs/" + url.PathEscape(j.ID) + "/log"
	if allowed(p, authz.JobSubmit, authz.Resource{Kind: "job", Project: p.Project}) {
		d.Rerun, d.RerunNote = rerunBody(j)
	}
	u.render(w, r, http.StatusOK, "job", j.Name+" · job "+j.ID, "jobs", d)
}

func stampPtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return stamp(*t)
}

// image says which image the job ran in and whether this job built it, and links the build
// log when one is kept and the caller may read it (as GET /api/v1/images/{hash}/build-log).
func (u *UI) image(p auth.Principal, j job.Job) imageInfo {
	im := imageInfo{Ref: j.Image}
	switch {
	case j.Image == "":
		return im
	case j.ImageCacheHit:
		im.How = "cache hit, no build"
	case j.SpecHash != "":
		im.How = "built by this job"
	default:
		im.How = "used as given"
	}
	if j.SpecHash != "" && u.d.BuildLog != nil {
		if _, err := u.d.BuildLog(j.SpecHash); err == nil &&
			allowed(p, authz.ImageRead, authz.Resource{Kind: "image", ID: j.SpecHash, Project: jobProject(j)}) {
			im.BuildLog = "/api/v1/images/" + url.PathEscape(j.SpecHash) + "/build-log"
		}
	}
	return im
}

// logText is the job's stored output, its last logTail lines, as one text.
func (u *UI) logText(r *http.Request, j job.Job) (string, string) {
	var lines []string
	var cur strings.Builder
	err := u.d.Jobs.Logs(r.Context(), j.ID, false, func(c job.LogChunk) error {
		text := c.Text
		if c.Stream == "system" {
			text = "[berth] " + text
		}
		for text != "" {
			line, rest, nl := strings.Cut(text, "\n")
			cur.WriteString(line)
			if !nl {
				break
			}
			lines = append(lines, cur.String())
			cur.Reset()
			text = rest
		}
		return nil
	})
	if cur.Len() > 0 {
		lines = append(lines, cur.String())
	}
	if err != nil {
		u.d.Log.Warn("read job log", "job", j.ID, "err", err)
		return "", "The output could not be read."
	}
	note := ""
	if len(lines) > logTail {
		note = fmt.Sprintf("The last %d of %d lines.", logTail, len(lines))
		lines = lines[len(lines)-logTail:]
	}
	if len(lines) == 0 {
		note = "No output yet."
	}
	return strings.Join(lines, "\n"), note
}

// maxListedOutputs caps the outputs the page lists (the tar download has them all).
const maxListedOutputs = 500

// outputs lists what the job kept of /data/out, read below its folder without following
// links (as the API's outputs route does).
func (u *UI) outputs(j job.Job) ([]output, string) {
	if !j.State.Terminal() {
		return nil, "Outputs are kept once the job ends."
	}
	if j.OutputDir == "" {
		if j.Kind == job.KindComponent {
			return nil, "A component's outputs go to storage."
		}
		return nil, "This job kept no outputs."
	}
	f, err := datadir.OpenFolder(j.OutputDir, "out")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "The outputs are gone (deleted)."
		}
		u.d.Log.Warn("open job outputs", "job", j.ID, "err", err)
		return nil, "The outputs could not be read."
	}
	defer f.Close()
	var out []output
	errMany := errors.New("many")
	err = f.Walk("", 10_000, func(rel string, fi fs.FileInfo, _ *os.Root) error {
		if fi.IsDir() {
			return nil
		}
		if len(out) == maxListedOutputs {
			return errMany
		}
		out = append(out, output{Path: rel, Size: size(fi.Size()),
			URL: "/api/v1/jobs/" + url.PathEscape(j.ID) + "/outputs?path=" + url.QueryEscape(rel)})
		return nil
	})
	switch {
	case errors.Is(err, errMany):
		return out, fmt.Sprintf("The first %d files; download them all as a tar.", maxListedOutputs)
	case err != nil:
		u.d.Log.Warn("list job outputs", "job", j.ID, "err", err)
		return nil, "The outputs could not be listed: " + err.Error()
	case len(out) == 0:
		return nil, "The job wrote nothing to /data/out."
	}
	return out, ""
}

func size(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
}

// specText is what the job runs, as YAML: the block (secret env values shown as [hidden]), or
// the component and configuration.
func specText(j job.Job) string {
	var v any = j.Block
	if j.Component != nil {
		v = j.Component
	} else {
		b := j.Block
		if len(b.Env) > 0 {
			env := make(map[string]any, len(b.Env))
			for k, e := range b.Env {
				if e.Secret {
					env[k] = map[string]any{"value": "[hidden]", "secret": true}
				} else {
					env[k] = e.Value
				}
			}
			// Through JSON, so the YAML has the spec's own field names.
			raw, _ := json.Marshal(b)
			var m map[string]any
			json.Unmarshal(raw, &m)
			m["env"] = env
			v = m
		}
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	var generic any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return string(raw)
	}
	out, err := yaml.Marshal(generic)
	if err != nil {
		return string(raw)
	}
	return string(out)
}

// rerunBody is what POST /api/v1/jobs takes to run a block job's spec again (the spec as
// JSON, which is YAML), or why it cannot be sent from here: a component job runs from its
// configuration's page, a secret's value is never in the page, and a script file is not kept.
func rerunBody(j job.Job) (string, string) {
	switch {
	case j.Kind != job.KindBlock || j.Component != nil:
		return "", "A component job runs again from its configuration."
	case j.Block.Script != "":
		return "", "Its script file is not kept: run it again with berth run."
	}
	for _, e := range j.Block.Env {
		if e.Secret {
			return "", "Its secret values are never shown here: run it again with berth run."
		}
	}
	spec, err := json.Marshal(j.Block)
	if err != nil {
		return "", ""
	}
	body, err := json.Marshal(map[string]string{"spec": string(spec), "filename": "block.yaml"})
	if err != nil {
		return "", ""
	}
	return string(body), ""
}

// handleJobLog serves a job's whole stored output as a text file, to whom may read the job
// (the API's logs route answers JSON chunks or Server-Sent Events).
func (u *UI) handleJobLog(w http.ResponseWriter, r *http.Request) {
	p, ok := u.principal(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	j, err := u.d.Jobs.Get(r.Context(), id)
	if errors.Is(err, job.ErrNotFound) {
		u.fail(w, r, http.StatusNotFound, "No job "+id+".")
		return
	}
	if err != nil {
		u.internal(w, r, "read the job", err)
		return
	}
	if !u.can(w, r, p, authz.JobRead, authz.Resource{Kind: "job", ID: j.ID, Project: jobProject(j), Owner: j.Owner}) {
		return
	}
	h := w.Header()
	securityHeaders(h)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "job-"+j.ID+".log"))
	err = u.d.Jobs.Logs(r.Context(), j.ID, false, func(c job.LogChunk) error {
		text := c.Text
		if c.Stream == "system" {
			text = prefixLines(text, "[berth] ")
		}
		_, err := io.WriteString(w, text)
		return err
	})
	if err != nil {
		u.d.Log.Warn("write job log", "job", j.ID, "err", err)
	}
}

// prefixLines puts prefix before each line of text.
func prefixLines(text, prefix string) string {
	var b strings.Builder
	for text != "" {
		line, rest, nl := strings.Cut(text, "\n")
		b.WriteString(prefix + line)
		if nl {
			b.WriteString("\n")
		}
		text = rest
	}
	return b.String()
}
