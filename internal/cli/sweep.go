package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/berthproject/berth/internal/runtime"
)

func newSweepCmd(g *globals) *cobra.Command {
	var tests bool
	cmd := &cobra.Command{
		Use:   "sweep [--tests]",
		Short: "Remove what a stopped berth (or berth's tests) left on the engine",
		Long: `Without flags: remove everything the berth of --data-dir made on the engine, the server's
and berth run's (their instances, kept in <data-dir>/instance and <data-dir>/run/instance):
job and service containers, service networks, service images and the server's generated
images (a later run builds them again). Only objects labelled with
those instances are touched; other berths on the same engine and everything not berth's stay.
Refused while a server or a berth run uses the data dir. Services stay defined: make their
images again with berth service rebuild.

With --tests: remove everything labelled berth.test=1, the containers, generated images and
networks berth's tests create and normally remove themselves, and berth's untagged images (what
failed builds leave of their finished steps). Base images stay.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sel := []map[string]string{{runtime.LabelManaged: "true", runtime.LabelTest: "1"}}
			what := "leftover test object(s)"
			if !tests {
				dataDir, err := filepath.Abs(g.dataDir)
				if err != nil {
					return withCode(ExitUsage, err)
				}
				unlock, err := lockIdle(dataDir)
				if err != nil {
					return withCode(ExitFailure, err)
				}
				defer unlock()
				sel = nil
				for _, dir := range []string{dataDir, filepath.Join(dataDir, "run")} {
					id, err := readInstance(filepath.Join(dir, instanceFile))
					if errors.Is(err, fs.ErrNotExist) {
						continue
					}
					if err != nil {
						return withCode(ExitFailure, err)
					}
					sel = append(sel, map[string]string{runtime.LabelManaged: "true", runtime.LabelInstance: id})
				}
				if len(sel) == 0 {
					fmt.Fprintf(g.stderr, "berth: %s has no instance id: no berth has run there, nothing to sweep\n", dataDir)
					return nil
				}
				what = "object(s) of " + dataDir
			}
			eng, err := openEngine(cmd.Context(), "")
			if err != nil {
				return withCode(ExitFailure, err)
			}
			defer eng.Close()
			total := 0
			for _, s := range sel {
				n, err := eng.Sweep(cmd.Context(), s)
				total += n
				if err != nil {
					return withCode(ExitFailure, err)
				}
			}
			if tests {
				// Failed builds leave their finished steps untagged; nothing names them.
				n, err := eng.PruneDangling(cmd.Context(), "")
				total += n
				if err != nil {
					return withCode(ExitFailure, err)
				}
			}
			if total > 0 {
				fmt.Fprintf(g.stderr, "berth: swept %d %s\n", total, what)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&tests, "tests", false, "remove what berth's tests left behind (label berth.test=1), whatever their data dir")
	return cmd
}

// lockIdle takes the server's and berth run's locks of a data dir, failing when either is
// held: a running berth's containers are not leftovers.
func lockIdle(dataDir string) (func(), error) {
	var held []*os.File
	unlock := func() {
		for _, f := range held {
			f.Close()
		}
	}
	for _, l := range []struct{ path, who string }{
		{filepath.Join(dataDir, "server.lock"), "a berth server"},
		{filepath.Join(dataDir, "run", "lock"), "a berth run"},
	} {
		f, err := os.OpenFile(l.path, os.O_RDWR, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			unlock()
			return nil, fmt.Errorf("lock %s: %w", l.path, err)
		}
		held = append(held, f)
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			unlock()
			return nil, fmt.Errorf("%s is using %s: stop it before sweeping", l.who, dataDir)
		}
	}
	return unlock, nil
}
