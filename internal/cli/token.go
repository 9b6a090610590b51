package cli

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthproject/berth/internal/api"
	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/store"
)

func newTokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API tokens (on the server's machine, in its --data-dir)",
		Long: `Manage API tokens in the data dir's store, on the server's machine. Each token belongs to
a project and has a role there: admin (the whole server, every project), project-admin (its
project: tokens, sharing, audit), member (runs and changes things in its project) or read-only.
A scope narrows a token further. Over the API, POST /api/v1/tokens does the same for an admin
or a project admin.`,
	}
	var name, project, role, scope, expires, format string
	create := &cobra.Command{
		Use:   "create --name NAME [--project P] [--role admin|project-admin|member|read-only] [--scope ...] [--expires 30d]",
		Short: "Issue a token; it is printed once and stored only as a hash",
		Example: `  berth token create --name ci --project analytics --role member --expires 90d
  berth token create --name dashboard --scope service:dash   # reaches only /proxy/dash/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if name == "" {
				return withCode(ExitUsage, fmt.Errorf("--name is required"))
			}
			r, err := auth.NormalizeRole(role)
			if err != nil {
				return withCode(ExitUsage, fmt.Errorf("--role: %w", err))
			}
			if err := auth.ValidScope(scope); err != nil {
				return withCode(ExitUsage, fmt.Errorf("--scope: %w", err))
			}
			var ttl time.Duration
			if expires != "" {
				if ttl, err = api.ParseLifetime(expires); err != nil {
					return withCode(ExitUsage, fmt.Errorf("--expires: %w", err))
				}
			}
			st, err := openStore(cmd.Context(), g.dataDir)
			if err != nil {
				return withCode(ExitFailure, err)
			}
			defer st.Close()
			if _, err := st.GetProject(cmd.Context(), project); errors.Is(err, store.ErrNotFound) {
				return withCode(ExitUsage, fmt.Errorf("--project: project %q does not exist (berth project list shows them; berth project create %s makes it)", project, project))
			} else if err != nil {
				return withCode(ExitFailure, err)
			}
			plain, _, err := auth.New(st).IssueToken(cmd.Context(), auth.TokenSpec{Name: name, Project: project, Role: r, Scope: scope, TTL: ttl})
			if errors.Is(err, store.ErrConflict) {
				return withCode(ExitUsage, fmt.Errorf("--name: a token named %q exists", name))
			}
			if err != nil {
				return withCode(ExitFailure, err)
			}
			fmt.Fprintln(g.stdout, plain)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "who or what the token is for")
	create.Flags().StringVar(&project, "project", store.DefaultProject, "the project the token belongs to (it must exist)")
	create.Flags().StringVar(&role, "role", auth.RoleMember, "admin, project-admin, member or read-only (user is member's old name)")
	create.Flags().StringVar(&scope, "scope", "", "narrow the token: comma-separated service:<name>, bucket:<id>:read|write, component:<id>")
	create.Flags().StringVar(&expires, "expires", "", "lifetime: days (30d) or a duration (12h); default: never")
	list := &cobra.Command{
		Use:   "list",
		Short: "List tokens (never their values)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openStore(cmd.Context(), g.dataDir)
			if err != nil {
				return withCode(ExitFailure, err)
			}
			defer st.Close()
			toks, err := st.ListTokens(cmd.Context())
			if err != nil {
				return withCode(ExitFailure, err)
			}
			views := make([]api.TokenView, 0, len(toks))
			for _, t := range toks {
				views = append(views, api.ViewToken(t))
			}
			return printOut(g.stdout, format, views, func(w io.Writer) error { return printTokens(w, views) })
		},
	}
	registerOutput(list, &format)
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token and end its browser sessions: a running server refuses it within 10 s",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openStore(cmd.Context(), g.dataDir)
			if err != nil {
				return withCode(ExitFailure, err)
			}
			defer st.Close()
			return auth.New(st).Revoke(cmd.Context(), args[0])
		},
	}
	cmd.AddCommand(create, list, revoke, newTokenDeleteCmd(g))
	return cmd
}

// printTokens is token list's table.
func printTokens(w io.Writer, views []api.TokenView) error {
	tb := newTable(w, "ID", "NAME", "PROJECT", "ROLE", "SCOPE", "CREATED", "LAST USED", "EXPIRES", "REVOKED")
	for _, t := range views {
		tb.row(t.ID, t.Name, t.Project, t.Role, t.Scope, humanTime(t.CreatedAt), humanTimePtr(t.LastUsedAt),
			humanTimePtr(t.ExpiresAt), humanTimePtr(t.RevokedAt))
	}
	return tb.flush()
}
