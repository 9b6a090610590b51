package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthproject/berth/internal/image"
	"github.com/berthproject/berth/internal/runtime"
)

func newRuntimeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runtime",
		Short: "Build and list the base runtime images blocks run in",
	}
	var mirror, listFormat string
	boot := &cobra.Command{
		Use:   "bootstrap [LANGUAGE...]",
		Short: "Build base images from Debian packages (python, r, shell; default python)",
		Long: `Build berth's base runtime images offline from Debian packages: debootstrap a minimal
root filesystem, import it, and add a non-root user and berth's helper library. Needs root and
debootstrap on this machine, and reach to a Debian mirror.

An image whose recipe has not changed is never rebuilt: running this again is instant. The
root filesystem is also cached by recipe hash, so re-creating a removed image skips debootstrap.`,
		Example: "  berth runtime bootstrap python\n  berth runtime bootstrap python r shell",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"python"}
			}
			for _, lang := range args {
				if _, err := image.BaseRef(lang); err != nil {
					return withCode(ExitUsage, fmt.Errorf("%s (allowed: %s)", err, strings.Join(image.Languages(), ", ")))
				}
			}
			eng, err := openEngine(cmd.Context(), "")
			if err != nil {
				return withCode(ExitFailure, err)
			}
			defer eng.Close()
			cfg := imageConfig(g.dataDir, "", "")
			if mirror != "" {
				cfg.DebianMirror = mirror
			}
			m := image.NewManager(eng, cfg, g.logger())
			for _, lang := range args {
				start := time.Now()
				logw := &lockedWriter{w: g.stderr}
				stopProgress := progress(logw, "bootstrap "+lang, measuredBootstrap[lang], 30*time.Second)
				img, built, err := m.Bootstrap(cmd.Context(), lang, logw)
				stopProgress()
				if err != nil {
					return withCode(ExitFailure, fmt.Errorf("bootstrap %s (after %s): %w", lang, time.Since(start).Round(time.Second), err))
				}
				how := "up to date"
				if built {
					how = "built in " + time.Since(start).Round(time.Second).String()
				}
				ref, _ := image.BaseRef(lang)
				fmt.Fprintf(g.stdout, "%-16s %s  %s  (%s)\n", ref, shortID(img.ID), humanBytes(img.Size), how)
			}
			return nil
		},
	}
	boot.Flags().StringVar(&mirror, "mirror", "", "Debian mirror URL (default http://deb.debian.org/debian)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List base and generated images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			eng, err := openEngine(cmd.Context(), "")
			if err != nil {
				return withCode(ExitFailure, err)
			}
			defer eng.Close()
			imgs, err := eng.ListImages(cmd.Context(), map[string]string{runtime.LabelManaged: "true"})
			if err != nil {
				return withCode(ExitFailure, err)
			}
			views := make([]imageView, 0, len(imgs))
			for _, im := range imgs {
				views = append(views, imageView{Kind: im.Labels[runtime.LabelKind], Tags: im.Tags, ID: im.ID, SizeBytes: im.Size, Created: im.Created})
			}
			return printOut(g.stdout, listFormat, views, func(w io.Writer) error {
				t := newTable(w, "KIND", "TAGS", "ID", "SIZE", "CREATED")
				for _, v := range views {
					t.row(v.Kind, strings.Join(v.Tags, ","), shortID(v.ID), humanBytes(v.SizeBytes), humanTime(v.Created))
				}
				return t.flush()
			})
		},
	}
	registerOutput(list, &listFormat)
	buildLog := &cobra.Command{
		Use:   "build-log HASH",
		Short: "Print the stored build log of a generated image (a job's spec_hash, or the tag's 16 characters)",
		Example: `  berth runtime build-log 1c283b72ce8f53bc
  berth --data-dir /srv/berth runtime build-log <spec_hash>   # a server's logs`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m := image.NewManager(nil, imageConfig(g.dataDir, "", ""), g.logger())
			p, err := m.BuildLog(strings.TrimPrefix(args[0], "berth/gen:"))
			if err != nil {
				return withCode(ExitUsage, err)
			}
			b, err := readFile(p)
			if err != nil {
				return withCode(ExitFailure, err)
			}
			_, err = g.stdout.Write(b)
			return err
		},
	}
	cmd.AddCommand(boot, list, buildLog)
	return cmd
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// measuredBootstrap is how long each base image's first bootstrap took when measured on a
// loaded 2-core machine (debootstrap dominates; a faster mirror or disk is quicker). Progress
// lines quote it as a measurement, never as a promise.
var measuredBootstrap = map[string]string{
	"python": "about 4 min",
	"r":      "about 2.5 min",
	"shell":  "about 1 min",
}

// progress prints "<what>: 1m30s so far" every interval until the returned stop is called,
// so a long build shows it is alive and how long it has taken; measured, when known, says
// how long the same step took when it was measured.
func progress(w io.Writer, what, measured string, interval time.Duration) (stop func()) {
	start := time.Now()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				line := fmt.Sprintf("berth: %s: %s so far", what, time.Since(start).Round(time.Second))
				if measured != "" {
					line += " (measured on a loaded 2-core machine: " + measured + ")"
				}
				fmt.Fprintln(w, line)
			}
		}
	}()
	return func() { close(done); <-finished }
}

// lockedWriter serialises writes from a build and its progress lines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// imageView is an image as runtime list prints it.
type imageView struct {
	Kind      string    `json:"kind"`
	Tags      []string  `json:"tags"`
	ID        string    `json:"id"`
	SizeBytes int64     `json:"size_bytes"`
	Created   time.Time `json:"created"`
}
