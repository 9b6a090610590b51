package cli

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	goruntime "runtime"

	"github.com/spf13/cobra"
)

// signinLink is the answer of POST /api/v1/signin-links.
type signinLink struct {
	URL       string `json:"url"`
	Path      string `json:"path"`
	ExpiresAt string `json:"expires_at"`
}

func newOpenCmd(g *globals) *cobra.Command {
	var cf clientFlags
	var browser bool
	cmd := &cobra.Command{
		Use:   "open SERVICE",
		Short: "Print a one-time link that signs a browser in and opens a service",
		Long: `Print a link to /proxy/SERVICE/ that signs a browser in with your token's rights: the
browser gets a session cookie (berth server --session-ttl, default 12 h) and goes on to the
service. The link works once, for 2 minutes. --browser also opens it in this machine's browser.

A browser can also sign in with a token at <server>/signin.`,
		Example: `  berth open echo
  berth open echo --browser`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			name := args[0]
			// Name a missing service now rather than after the browser got there. A token scoped
			// to the service may not read the service list: it goes on without the check.
			err = c.do(cmd.Context(), http.MethodGet, "/api/v1/services/"+url.PathEscape(name), nil, nil)
			var ae *apiError
			if err != nil && !(errors.As(err, &ae) && ae.Status == http.StatusForbidden) {
				return err
			}
			var link signinLink
			body := map[string]string{"next": "/proxy/" + url.PathEscape(name) + "/"}
			if err := c.do(cmd.Context(), http.MethodPost, "/api/v1/signin-links", body, &link); err != nil {
				return err
			}
			if cf.output == "json" {
				return printJSON(g.stdout, link)
			}
			fmt.Fprintln(g.stdout, link.URL)
			if browser {
				if err := openBrowser(link.URL); err != nil {
					return withCode(ExitFailure, fmt.Errorf("--browser: could not start a browser (%v): open the link above yourself", err))
				}
			}
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVar(&browser, "browser", false, "also open the link in this machine's browser")
	return cmd
}

// openBrowser hands a URL to the desktop's opener.
func openBrowser(u string) error {
	var cmd *exec.Cmd
	switch goruntime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.Command("xdg-open", u)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait()
	return nil
}
