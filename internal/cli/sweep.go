package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berthproject/berth/internal/runtime"
)

func newSweepCmd(g *globals) *cobra.Command {
	var tests bool
	cmd := &cobra.Command{
		Use:   "sweep --tests",
		Short: "Remove containers, images and networks left behind by crashed test runs",
		Long: `Remove everything labelled berth.test=1: the containers, generated images and networks
that berth's tests create and normally remove themselves. Nothing else is touched: base images
and everything without berth's test label stay.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !tests {
				return withCode(ExitUsage, fmt.Errorf("say what to sweep: --tests (the only kind for now)"))
			}
			eng, err := openEngine(cmd.Context(), "")
			if err != nil {
				return withCode(ExitFailure, err)
			}
			defer eng.Close()
			n, err := eng.Sweep(cmd.Context(), map[string]string{runtime.LabelManaged: "true", runtime.LabelTest: "1"})
			if err != nil {
				return withCode(ExitFailure, err)
			}
			if n > 0 {
				fmt.Fprintf(g.stderr, "berth: swept %d leftover test object(s)\n", n)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&tests, "tests", false, "remove what berth's tests left behind (label berth.test=1)")
	return cmd
}
