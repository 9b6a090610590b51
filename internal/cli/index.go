package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthproject/berth/internal/pkgindex"
)

func newIndexCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "index",
		Short: "Serve Python and R packages from a folder (air-gapped installs)",
	}
	var dir, listen string
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Serve a folder as a PEP 503 simple index and a CRAN-style repository",
		Long: `Serve the packages in --dir for image builds on machines that cannot reach PyPI or CRAN.

Layout of --dir:
  python/<name>-<version>/...   files of a pure-Python distribution, served as a wheel
  r/<name>_<version>/...        an R source package (DESCRIPTION, NAMESPACE, R/)

Point the server at it: berth server --pip-index-url http://HOST:PORT/simple/ --cran-url http://HOST:PORT/cran`,
		Example: "  berth index serve --dir examples/packages --listen 127.0.0.1:8761",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ix, err := pkgindex.LoadDir(dir)
			if err != nil {
				return withCode(ExitUsage, fmt.Errorf("--dir %s: %w", dir, err))
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return withCode(ExitUsage, fmt.Errorf("--listen %s: %w", listen, err))
			}
			srv := &http.Server{Handler: ix.Handler(), ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(g.stderr, "berth: serving %s\n  pip:  http://%s/simple/\n  CRAN: http://%s/cran\n", dir, ln.Addr(), ln.Addr())
			go func() {
				<-cmd.Context().Done()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				srv.Shutdown(ctx)
			}()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return withCode(ExitFailure, err)
			}
			return nil
		},
	}
	serve.Flags().StringVar(&dir, "dir", "packages", "folder of packages")
	serve.Flags().StringVar(&listen, "listen", "127.0.0.1:8761", "address to listen on")
	cmd.AddCommand(serve)
	return cmd
}
