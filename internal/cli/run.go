package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthproject/berth/internal/block"
	"github.com/berthproject/berth/internal/component"
	"github.com/berthproject/berth/internal/datadir"
	"github.com/berthproject/berth/internal/image"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/pkgindex"
	"github.com/berthproject/berth/internal/spec"
)

// runFlags are `berth run`'s flags.
type runFlags struct {
	bootstrap   bool
	packages    string
	pipIndex    string
	cranURL     string
	out         string
	shareRoots  []string
	allowNet    []string
	quiet       bool
	jsonSummary bool
	maxDataSize string
}

func newRunCmd(g *globals) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run SPEC",
		Short: "Run a block once, here, without a server",
		Long: `Run a block (a YAML spec and the script next to it) in a fresh, locked-down container,
streaming its output, and print a summary: the image (cache hit or built) and the time of each
stage. The pipeline is the server's, with an embedded store under --data-dir/run.

Mounts in the spec may only name folders inside the spec's folder (or a --share-root).
Dependencies are built into a generated image once per distinct set; editing the script never
rebuilds. Without registries, serve packages from a folder with --packages (see
examples/packages) or point --pip-index-url / --cran-url at your own mirror.`,
		Example: `  berth run examples/shell-hello/block.yaml
  berth run --packages examples/packages examples/python-csv/block.yaml --out /tmp/out
  berth run --bootstrap examples/r-summary/block.yaml   # build the R base image first if missing`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runBlock(cmd.Context(), g, f, args[0]) },
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.bootstrap, "bootstrap", false, "build the language's base image first if it is missing (takes a minute or two)")
	fl.StringVar(&f.packages, "packages", "", "serve Python/R packages from this folder on loopback for the image build (layout: see examples/packages)")
	fl.StringVar(&f.pipIndex, "pip-index-url", os.Getenv("BERTH_PIP_INDEX_URL"), "PEP 503 index for Python dependencies (env BERTH_PIP_INDEX_URL)")
	fl.StringVar(&f.cranURL, "cran-url", os.Getenv("BERTH_CRAN_URL"), "CRAN-style repository for R dependencies (env BERTH_CRAN_URL)")
	fl.StringVar(&f.out, "out", "", "copy the files the block wrote to /data/out into this folder")
	fl.StringSliceVar(&f.shareRoots, "share-root", nil, "folders mounts may come from (default: the spec's folder)")
	fl.StringSliceVar(&f.allowNet, "allow-network", nil, `networks a block may ask for besides "none" (e.g. bridge)`)
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "print only the block's output, no progress or summary")
	fl.BoolVar(&f.jsonSummary, "json", false, "print the finished job as JSON on stdout after the output")
	addMaxDataSizeFlag(fl, &f.maxDataSize)
	return cmd
}

func runBlock(ctx context.Context, g *globals, f runFlags, specPath string) error {
	blk, files, err := spec.LoadBlock(specPath)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	specDir, err := filepath.Abs(filepath.Dir(specPath))
	if err != nil {
		return withCode(ExitUsage, err)
	}
	progress := g.stderr
	if f.quiet {
		progress = io.Discard
	}
	log := g.logger()

	dataDir := filepath.Join(g.dataDir, "run")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return withCode(ExitFailure, fmt.Errorf("create data dir: %w", err))
	}
	// Several `berth run`s may share the data dir. Only one that finds no other running may
	// reconcile (mark jobs of a crashed run failed and remove their containers): it holds the
	// lock exclusively while it does, and every run holds it shared while it runs.
	lock, reconcile, err := lockRunDir(filepath.Join(dataDir, "lock"))
	if err != nil {
		return withCode(ExitFailure, err)
	}
	defer lock.Close()
	// Runs sharing this data dir share its instance (and the lock above decides which may
	// reconcile); a run with another data dir never touches this one's containers.
	instance, err := dataDirInstance(dataDir, "")
	if err != nil {
		return withCode(ExitFailure, err)
	}

	eng, err := openEngine(ctx, instance)
	if err != nil {
		return withCode(ExitFailure, err)
	}
	defer eng.Close()
	if _, err := probeEngine(ctx, eng, progress); err != nil {
		return withCode(ExitFailure, err)
	}
	st, err := openStore(ctx, dataDir)
	if err != nil {
		return withCode(ExitFailure, err)
	}
	defer st.Close()
	sealer, err := loadSealer(dataDir)
	if err != nil {
		return withCode(ExitFailure, err)
	}
	if err := sealStore(ctx, st, sealer, progress); err != nil {
		return withCode(ExitFailure, err)
	}

	icfg := imageConfig(g.dataDir, f.pipIndex, f.cranURL)
	if f.packages != "" {
		url, stop, err := servePackages(f.packages)
		if err != nil {
			return withCode(ExitUsage, err)
		}
		defer stop()
		icfg.PipIndexURL = url + "/simple/"
		icfg.CRANURL = url + "/cran"
		fmt.Fprintf(progress, "berth: serving packages from %s at %s\n", f.packages, url)
	}
	images := image.NewManager(eng, icfg, log)

	if blk.Image == "" {
		if err := ensureBase(ctx, images, blk.Language, f.bootstrap, progress); err != nil {
			return err
		}
	}

	jcfg := job.DefaultConfig(dataDir)
	jcfg.Workers = 1
	jcfg.Instance = instance
	jcfg.Reconcile = reconcile
	// `berth run` has no storage: it runs blocks, and refuses components with the reason.
	jcfg.Executors = map[string]job.Executor{job.KindBlock: block.New(), job.KindComponent: component.New(component.Config{})}
	jcfg.ShareRoots = append([]string{specDir}, f.shareRoots...)
	jcfg.AllowedNetworks = append([]string{"none"}, f.allowNet...)
	if jcfg.MaxDataSize, err = parseMaxDataSize(f.maxDataSize); err != nil {
		return err
	}
	sayDiskCap(progress, dataDir, jcfg.MaxDataSize)
	m, err := job.New(jcfg, st, eng, images, log)
	if err != nil {
		return withCode(ExitFailure, err)
	}
	if err := m.Start(ctx); err != nil {
		return withCode(ExitFailure, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		m.Close(cctx)
	}()

	owner := "local"
	if u, err := user.Current(); err == nil {
		owner = u.Username
	}
	j, err := m.Submit(ctx, job.Submission{Block: *blk, Files: files, BaseDir: specDir, Owner: owner})
	if err != nil {
		return withCode(ExitUsage, err)
	}
	if !f.quiet {
		fmt.Fprintf(progress, "berth: job %s (%s) queued\n", j.ID, blk.Name)
	}

	// Output streams while the job runs; Ctrl-C cancels the job and still cleans up.
	logsDone := make(chan struct{})
	bg := context.WithoutCancel(ctx)
	go func() {
		defer close(logsDone)
		m.Logs(bg, j.ID, true, func(ch job.LogChunk) error {
			if ch.Stream == "system" && f.quiet {
				return nil
			}
			printChunk(g.stdout, g.stderr, ch)
			return nil
		})
	}()
	final, err := waitOrCancel(ctx, m, j.ID, progress)
	if err != nil {
		return withCode(ExitFailure, err)
	}
	select {
	case <-logsDone:
	case <-time.After(5 * time.Second):
	}

	if f.out != "" && final.OutputDir != "" {
		// Nothing is followed: a link, device or hard link the block left is refused.
		n, err := datadir.CopyTree(final.OutputDir, "out", f.out, jcfg.OutputLimits)
		if err != nil {
			return withCode(ExitFailure, fmt.Errorf("copy outputs to %s: %w", f.out, err))
		}
		if !f.quiet {
			fmt.Fprintf(progress, "berth: copied %d output file(s) to %s\n", n, f.out)
		}
	}
	if f.jsonSummary {
		printJSON(g.stdout, final)
	}
	if !f.quiet {
		printSummary(progress, final)
	}
	return jobExit(final)
}

// waitOrCancel waits for the job; if ctx ends first (Ctrl-C), it cancels the job and waits
// for its cleanup.
func waitOrCancel(ctx context.Context, m *job.Manager, id string, progress io.Writer) (job.Job, error) {
	final, err := m.Wait(ctx, id)
	if err == nil {
		return final, nil
	}
	if ctx.Err() == nil {
		return final, err
	}
	fmt.Fprintln(progress, "\nberth: interrupted: cancelling the job and removing its container")
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()
	if _, err := m.Cancel(cctx, id); err != nil && !errors.Is(err, job.ErrTerminal) {
		return final, err
	}
	return m.Wait(cctx, id)
}

// ensureBase checks that the language's base image exists and builds it when asked to.
func ensureBase(ctx context.Context, images *image.Manager, lang string, bootstrap bool, progress io.Writer) error {
	ref, err := image.BaseRef(lang)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	present, err := images.HasBase(ctx, lang)
	if err != nil {
		return withCode(ExitFailure, err)
	}
	if present {
		return nil
	}
	if !bootstrap {
		return withCode(ExitInternal, &image.MissingBaseError{Language: lang, Ref: ref})
	}
	fmt.Fprintf(progress, "berth: base image %s is missing; bootstrapping it from Debian packages\n", ref)
	if _, _, err := images.Bootstrap(ctx, lang, progress); err != nil {
		return withCode(ExitInternal, fmt.Errorf("bootstrap %s: %w", lang, err))
	}
	return nil
}

// servePackages serves a package folder on a loopback port until stop is called.
func servePackages(dir string) (url string, stop func(), err error) {
	ix, err := pkgindex.LoadDir(dir)
	if err != nil {
		return "", nil, fmt.Errorf("--packages %s: %w", dir, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("serve packages: %w", err)
	}
	srv := &http.Server{Handler: ix.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// lockRunDir takes the run lock: exclusively if no other run holds it (then this run may
// reconcile), and shared for the rest of the run.
func lockRunDir(path string) (*os.File, bool, error) {
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	exclusive := syscall.Flock(int(fh.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
	// Converting to shared keeps others from reconciling while we run.
	if err := syscall.Flock(int(fh.Fd()), syscall.LOCK_SH); err != nil {
		fh.Close()
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	return fh, exclusive, nil
}
