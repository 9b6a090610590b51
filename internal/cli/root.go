// Package cli holds berth's cobra commands. Commands are thin: parse flags, call a package,
// print. Backends and stores are chosen here, by explicit wiring, and nowhere else.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes of the berth command. `berth run` and `berth job submit --wait` map a job's end
// to these so scripts can tell failures apart.
const (
	ExitOK        = 0
	ExitUserError = 1  // the script exited 1
	ExitAppError  = 2  // the script exited > 1
	ExitTimeout   = 3  // the job's timeout passed
	ExitOOM       = 4  // the container ran out of memory
	ExitInternal  = 5  // berth could not run the job (image build, engine, crash)
	ExitCancelled = 6  // the job was cancelled
	ExitKilled    = 7  // a signal from outside berth killed the container (e.g. docker kill)
	ExitDiskLimit = 8  // the job wrote more to /data than its cap (limits.disk)
	ExitUsage     = 64 // bad flags or an invalid spec: nothing ran
	ExitFailure   = 70 // berth itself failed (engine unreachable, store error)
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error { return &exitError{code: code, err: err} }

// globals are the flags every command shares.
type globals struct {
	dataDir  string
	logLevel string
	stdout   io.Writer
	stderr   io.Writer
}

func (g *globals) logger() *slog.Logger {
	level := slog.LevelInfo
	switch strings.ToLower(g.logLevel) {
	case "debug":
		level = slog.LevelDebug
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
}

// defaultDataDir is $BERTH_DATA_DIR, else $XDG_DATA_HOME/berth, else ~/.local/share/berth.
func defaultDataDir() string {
	if d := os.Getenv("BERTH_DATA_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "berth")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "berth")
	}
	return filepath.Join(os.TempDir(), "berth")
}

// NewRoot builds the command tree.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "berth",
		Short: "Run other people's code in locked-down containers",
		Long: `berth runs Python, R and shell scripts ("blocks") in fresh, locked-down Docker
containers with exactly the data they are given, builds each distinct set of dependencies into
an image once, and keeps every job's state, output and timings.

Components (images speaking the common interface) run through berth component|config and
read and write berth storage; services are long-running containers behind /proxy/<name>/
(berth service). Both need a server.

Start here:
  berth runtime bootstrap python         build the Python base image from Debian packages
  berth run examples/shell-hello/block.yaml
  berth server                           serve the API; then berth job submit|list|logs

Connect to a server once: berth login --server URL (the token from --token, BERTH_TOKEN or
stdin) stores a context; flags and BERTH_SERVER/BERTH_TOKEN override it (berth context list).

Exit codes (run, job submit --wait and config run --wait map the job's end to 0-8):
  0   ok
  1   user error: the script exited 1, or pip, R or apt could not install a dependency
  2   app error: the script exited with more than 1
  3   timeout: the job's timeout passed
  4   out of memory
  5   internal: berth could not run the job (engine, crash, an image build failing otherwise)
  6   cancelled
  7   killed by a signal from outside berth (e.g. docker kill)
  8   disk limit: the job wrote more to /data than its cap
  64  bad input: bad flags, an invalid spec, or a request the server refused (4xx); nothing ran
  70  berth itself failed: server unreachable, engine unreachable, store error, server 5xx`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.dataDir, "data-dir", defaultDataDir(),
		"where berth keeps its store, workspaces and outputs (env BERTH_DATA_DIR)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "debug | info | warn | error")

	root.AddCommand(
		newRunCmd(g),
		newServerCmd(g),
		newJobCmd(g),
		newRuntimeCmd(g),
		newIndexCmd(g),
		newSweepCmd(g),
		newBenchCmd(g),
		newTokenCmd(g),
		newProjectCmd(g),
		newAuditCmd(g),
		newImageCmd(g),
		newComponentCmd(g),
		newConfigCmd(g),
		newStorageCmd(g),
		newServiceCmd(g),
		newOpenCmd(g),
		newLoginCmd(g),
		newLogoutCmd(g),
		newContextCmd(g),
	)
	return root
}

// Main runs the CLI and returns the process exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewRoot(os.Stdout, os.Stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "berth:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "berth:", err)
	if strings.Contains(err.Error(), "unknown command") || strings.Contains(err.Error(), "flag") ||
		strings.Contains(err.Error(), "arg(s)") {
		return ExitUsage
	}
	return ExitFailure
}
