package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthproject/berth/internal/api"
	"github.com/berthproject/berth/internal/store"
)

func newAuditCmd(g *globals) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read the server's audit log (an admin: every project; a project admin: its own)",
		Long: `The audit log records every state-changing request to the API (refused ones too), every
browser sign-in and every job's end: who, what, on which resource, from where, and how it ended.
It never holds a request body, a token or a secret. The server keeps entries for
--audit-retention (default 90 days).`,
	}
	cf.register(cmd)
	var project, since, until, actor, action string
	var limit int
	list := &cobra.Command{
		Use:   "list [--project P] [--since 1h|RFC3339] [--actor NAME] [--limit N]",
		Short: "List audit entries, newest first",
		Example: `  berth audit list --since 24h
  berth audit list --project analytics --actor ci -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			for _, t := range []struct{ flag, val string }{{"since", since}, {"until", until}} {
				if t.val == "" {
					continue
				}
				ts, err := parseSinceTime(t.val, time.Now())
				if err != nil {
					return withCode(ExitUsage, fmt.Errorf("--%s: %w", t.flag, err))
				}
				q.Set(t.flag, ts.UTC().Format(time.RFC3339Nano))
			}
			if limit < 1 || limit > 1000 {
				return withCode(ExitUsage, fmt.Errorf("--limit: a number from 1 to 1000"))
			}
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			for k, v := range map[string]string{"project": project, "actor": actor, "action": action} {
				if v != "" {
					q.Set(k, v)
				}
			}
			q.Set("limit", strconv.Itoa(limit))
			var out struct {
				Entries []store.AuditEntry `json:"entries"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/audit?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			if out.Entries == nil {
				out.Entries = []store.AuditEntry{}
			}
			return printOut(g.stdout, cf.output, out.Entries, func(w io.Writer) error {
				tb := newTable(w, "AT", "ACTOR", "PROJECT", "ACTION", "RESOURCE", "OUTCOME", "STATUS", "REMOTE", "DETAIL")
				for _, e := range out.Entries {
					actor, status := e.ActorName, "-"
					if actor == "" {
						actor = "-"
					}
					if e.Status != 0 {
						status = strconv.Itoa(e.Status)
					}
					tb.row(humanTime(e.At), actor, dash(e.Project), e.Action, dash(e.Resource), e.Outcome, status, dash(e.Remote), dash(e.Detail))
				}
				return tb.flush()
			})
		},
	}
	fl := list.Flags()
	fl.StringVar(&project, "project", "", "only this project's entries (default: yours; an admin's: every project)")
	fl.StringVar(&since, "since", "", "only entries since then: a duration back from now (1h, 30m, 7d) or an RFC 3339 time")
	fl.StringVar(&until, "until", "", "only entries before then: a duration back from now or an RFC 3339 time")
	fl.StringVar(&actor, "actor", "", "only this token's entries (its name or id)")
	fl.StringVar(&action, "action", "", `only this action: a route such as "POST /api/v1/jobs", or job.finished`)
	fl.IntVar(&limit, "limit", 100, "at most this many entries (1-1000)")
	cmd.AddCommand(list)
	return cmd
}

// parseSinceTime reads a time back from now ("1h", "7d") or an RFC 3339 time.
func parseSinceTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := api.ParseLifetime(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: write a duration back from now (1h, 7d) or an RFC 3339 time", s)
	}
	return now.Add(-d), nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
