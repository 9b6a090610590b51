package web

import (
	"html/template"
	"time"

	"github.com/berthproject/berth/internal/job"
)

// pageNames are the templates besides the layout, one page each.
var pageNames = []string{"jobs", "job", "services", "service", "storage", "table", "images", "admin", "components", "config", "error"}

var funcs = template.FuncMap{
	"stamp": stamp,
	"human": human,
	"size":  size,
	"dot":   func(d, text string) status { return status{d, text} },
	"ms":    func(f float64) string { return human(time.Duration(f * float64(time.Millisecond))) },
}

// parsePages parses the layout once with each page: page name → template whose "layout"
// renders it.
func parsePages() map[string]*template.Template {
	base := template.Must(template.New("layout").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	out := map[string]*template.Template{}
	for _, n := range pageNames {
		out[n] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, "templates/"+n+".html"))
	}
	return out
}

// status is how a state shows: a dot (none for a stopped or cancelled thing) and its word.
type status struct {
	Dot  string // ok | err | run | pending | "" (no dot)
	Text string
}

// jobStatus is a job state's dot: green succeeded, red failed, pulsing green running,
// blinking grey while it waits or winds down, none once cancelled.
func jobStatus(s job.State) status {
	switch s {
	case job.StateSucceeded:
		return status{"ok", string(s)}
	case job.StateFailed:
		return status{"err", string(s)}
	case job.StateRunning:
		return status{"run", string(s)}
	case job.StateCancelled:
		return status{"", string(s)}
	default:
		return status{"pending", string(s)}
	}
}
