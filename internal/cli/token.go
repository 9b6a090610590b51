package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthproject/berth/internal/auth"
)

func newTokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API tokens (on the server's machine, in its --data-dir)",
	}
	var name, role, scope, format string
	create := &cobra.Command{
		Use:     "create --name NAME [--role user|admin]",
		Short:   "Issue a token; it is printed once and stored only as a hash",
		Example: "  berth token create --name ci --role user",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if name == "" {
				return withCode(ExitUsage, fmt.Errorf("--name is required"))
			}
			if role != "user" && role != "admin" {
				return withCode(ExitUsage, fmt.Errorf("--role: %q is not allowed; use user or admin", role))
			}
			if scope != "" && !strings.HasPrefix(scope, "service:") {
				return withCode(ExitUsage, fmt.Errorf("--scope: %q is not allowed; use service:<name>", scope))
			}
			st, err := openStore(cmd.Context(), g.dataDir)
			if err != nil {
				return withCode(ExitFailure, err)
			}
			defer st.Close()
			plain, _, err := auth.New(st).Issue(cmd.Context(), name, role, scope)
			if err != nil {
				return withCode(ExitFailure, err)
			}
			fmt.Fprintln(g.stdout, plain)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "who or what the token is for")
	create.Flags().StringVar(&role, "role", "user", "user (own jobs) or admin (everything)")
	create.Flags().StringVar(&scope, "scope", "", "limit the token to one service's proxy: service:<name>")
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
			views := make([]tokenView, 0, len(toks))
			for _, t := range toks {
				views = append(views, tokenView{ID: t.ID, Name: t.Name, Role: t.Role, Scope: t.Scope,
					CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsedAt, RevokedAt: t.RevokedAt})
			}
			return printOut(g.stdout, format, views, func(w io.Writer) error {
				tb := newTable(w, "ID", "NAME", "ROLE", "SCOPE", "CREATED", "LAST USED", "REVOKED")
				for _, t := range views {
					tb.row(t.ID, t.Name, t.Role, t.Scope, humanTime(t.CreatedAt), humanTimePtr(t.LastUsedAt), humanTimePtr(t.RevokedAt))
				}
				return tb.flush()
			})
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

// tokenView is a token as token list shows it: never its value or hash.
type tokenView struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	Scope      string     `json:"scope,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}
