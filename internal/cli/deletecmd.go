package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berthproject/berth/internal/store"
)

// deleteAnswer is every DELETE route's answer.
type deleteAnswer struct {
	Deleted string   `json:"deleted"`
	Removed []string `json:"removed"`
}

// newDeleteCmd is "<thing> delete ID" (arg names the argument: ID, NAME): DELETE prefix+ID
// (with ?force=true when the command has --force and it is given), printing what went.
func newDeleteCmd(g *globals, cf *clientFlags, arg, short, prefix, forceHelp string) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete " + arg,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			p := prefix + url.PathEscape(args[0])
			if force {
				p += "?force=true"
			}
			var ans deleteAnswer
			if err := c.do(cmd.Context(), http.MethodDelete, p, nil, &ans); err != nil {
				return err
			}
			return printOut(g.stdout, cf.output, ans, func(w io.Writer) error {
				return printDeleted(w, ans)
			})
		},
	}
	if forceHelp != "" {
		cmd.Flags().BoolVar(&force, "force", false, forceHelp)
	}
	return cmd
}

// printDeleted says plainly what a delete took with it.
func printDeleted(w io.Writer, ans deleteAnswer) error {
	if len(ans.Removed) == 0 {
		_, err := fmt.Fprintf(w, "deleted %s\n", ans.Deleted)
		return err
	}
	_, err := fmt.Fprintf(w, "deleted %s, with: %s\n", ans.Deleted, strings.Join(ans.Removed, ", "))
	return err
}

// newTokenDeleteCmd deletes a revoked token from the data dir's store. A token must be
// revoked first: revoking records when it stopped working; deleting forgets it.
func newTokenDeleteCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a revoked token (with its browser sessions); revoke it first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := checkOutput(format); err != nil {
				return err
			}
			st, err := openStore(cmd.Context(), g.dataDir)
			if err != nil {
				return withCode(ExitFailure, err)
			}
			defer st.Close()
			t, err := st.DeleteToken(cmd.Context(), args[0])
			switch {
			case errors.Is(err, store.ErrNotFound):
				return withCode(ExitUsage, fmt.Errorf("no token %q (berth token list shows them)", args[0]))
			case errors.Is(err, store.ErrInUse):
				return withCode(ExitUsage, fmt.Errorf("token %q still works: revoke it first (berth token revoke %s), then delete it", args[0], args[0]))
			case err != nil:
				return withCode(ExitFailure, err)
			}
			ans := deleteAnswer{Deleted: "token " + t.ID + " (" + t.Name + ")", Removed: []string{"its browser sessions and sign-in codes"}}
			return printOut(g.stdout, format, ans, func(w io.Writer) error { return printDeleted(w, ans) })
		},
	}
	registerOutput(cmd, &format)
	return cmd
}
