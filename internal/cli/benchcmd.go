package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/berthproject/berth/internal/bench"
)

func newBenchCmd(g *globals) *cobra.Command {
	cfg := bench.DefaultConfig()
	scfg := bench.DefaultServiceConfig()
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure berth's overhead against raw engine calls in the same run",
		Long: `Run berth's benchmarks side by side with their baselines and print the figures last:

  P1 job_overhead_ratio   p50 of a trivial shell job through berth's whole pipeline (store,
                          workspace, image ensure, container, logs, cleanup) over p50 of raw
                          Engine API create+start+wait+remove with the same image and security
  P3 cache_hit_p99_ms     p99 of "ensure generated image" for an already-built dependency set
  P4 cold_start_ratio     first byte through the proxy of a stopped on-demand service, over
                          docker start + app ready + first byte measured directly
  P5 proxy_added_*_ms     what the proxy adds to HTTP keep-alive requests (p50, p99) and to
                          WebSocket echoes (p50), against the container's own address

Needs the shell and python base images (berth runtime bootstrap shell python).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			eng, err := openEngine(cmd.Context(), "bench")
			if err != nil {
				return withCode(ExitFailure, err)
			}
			defer eng.Close()
			dir, err := os.MkdirTemp("", "berth-bench-")
			if err != nil {
				return withCode(ExitFailure, err)
			}
			defer os.RemoveAll(dir)
			res, err := bench.Run(cmd.Context(), eng, cfg, dir, g.stderr)
			if err != nil {
				return withCode(ExitFailure, fmt.Errorf("bench: %w", err))
			}
			sres, err := bench.RunServices(cmd.Context(), eng, scfg, dir, g.stderr)
			if err != nil {
				return withCode(ExitFailure, fmt.Errorf("bench services: %w", err))
			}
			bench.Print(g.stdout, res)
			bench.PrintServices(g.stdout, sres)
			return nil
		},
	}
	cmd.Flags().IntVar(&cfg.Jobs, "jobs", cfg.Jobs, "P1: sequential jobs on each side")
	cmd.Flags().IntVar(&cfg.EnsureCalls, "ensures", cfg.EnsureCalls, "P3: timed ensure calls")
	cmd.Flags().IntVar(&scfg.ColdRounds, "cold-starts", scfg.ColdRounds, "P4: cold starts on each side")
	cmd.Flags().IntVar(&scfg.Requests, "requests", scfg.Requests, "P5: HTTP requests on each side")
	cmd.Flags().IntVar(&scfg.WSMessages, "ws-messages", scfg.WSMessages, "P5: WebSocket echoes on each side")
	cmd.Flags().StringVar(&scfg.Dir, "service-dir", scfg.Dir, "P4/P5: the service folder to measure")
	return cmd
}
