package cli

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berthproject/berth/internal/job"
)

func newJobOutputsCmd(g *globals, cf *clientFlags) *cobra.Command {
	var out, rel string
	cmd := &cobra.Command{
		Use:   "outputs ID --out DIR",
		Short: "Fetch the files a job wrote to /data/out into DIR (or one of them with --path)",
		Example: `  berth job outputs j2611250a1b2c3d4e5f6a7b8 --out results/
  berth job outputs j2611250a1b2c3d4e5f6a7b8 --path report.csv > report.csv`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" && rel == "" {
				return withCode(ExitUsage, fmt.Errorf("--out DIR is required (or --path FILE to print one file)"))
			}
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			if rel != "" {
				w := g.stdout
				if out != "" {
					return withCode(ExitUsage, fmt.Errorf("--path prints one file to stdout; give --out or --path, not both"))
				}
				return c.raw(cmd.Context(), http.MethodGet, "/api/v1/jobs/"+url.PathEscape(args[0])+"/outputs?path="+url.QueryEscape(rel), "", nil, w)
			}
			n, err := c.fetchOutputs(cmd.Context(), args[0], out)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "berth: %d file(s) of job %s's outputs in %s\n", n, args[0], out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "unpack the job's outputs into this folder (created if needed)")
	cmd.Flags().StringVar(&rel, "path", "", "print only this file of the outputs (a path relative to out/) to stdout")
	return cmd
}

// submitOut adds --out to job submit; it implies --wait.
func submitOut(cmd *cobra.Command) *string {
	var out string
	cmd.Flags().StringVar(&out, "out", "", "after the job ends, unpack what it wrote to /data/out into this folder (implies --wait)")
	return &out
}

// fetchSubmitOutputs unpacks a finished job's outputs into dir, saying so on stderr.
func (c *client) fetchSubmitOutputs(ctx context.Context, g *globals, final job.Job, dir string) error {
	if final.OutputDir == "" {
		fmt.Fprintf(g.stderr, "berth: job %s kept no outputs; nothing written to %s\n", final.ID, dir)
		return nil
	}
	n, err := c.fetchOutputs(ctx, final.ID, dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stderr, "berth: %d output file(s) in %s\n", n, dir)
	return nil
}

// fetchOutputs streams GET /api/v1/jobs/{id}/outputs into dir and returns how many files
// it wrote.
func (c *client) fetchOutputs(ctx context.Context, id, dir string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/jobs/"+url.PathEscape(id)+"/outputs", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, c.unreachable(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return 0, decodeAPIError(resp)
	}
	n, err := extractTar(resp.Body, dir)
	if err != nil {
		return n, withCode(ExitFailure, fmt.Errorf("unpack job %s's outputs into %s: %w", id, dir, err))
	}
	return n, nil
}

// extractTar unpacks a tar of folders and regular files below dir, which is created. Every
// name must be a clean relative path; a link or any other kind of entry is refused, and
// everything is written through os.Root, so nothing lands outside dir.
func extractTar(r io.Reader, dir string) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	n := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("read the archive (cut short?): %w", err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if !safeTarName(name) {
			return n, fmt.Errorf("entry %q: not a clean path inside the folder; refused", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return n, fmt.Errorf("entry %q: %w", h.Name, err)
			}
		case tar.TypeReg:
			if d := path.Dir(name); d != "." {
				if err := root.MkdirAll(d, 0o755); err != nil {
					return n, fmt.Errorf("entry %q: %w", h.Name, err)
				}
			}
			// A link already in dir at this name is replaced, never written through.
			if fi, err := root.Lstat(name); err == nil && fi.Mode()&os.ModeSymlink != 0 {
				if err := root.Remove(name); err != nil {
					return n, fmt.Errorf("entry %q: %w", h.Name, err)
				}
			}
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
			if err != nil {
				return n, fmt.Errorf("entry %q: %w", h.Name, err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return n, fmt.Errorf("entry %q: %w", h.Name, err)
			}
			if err := f.Close(); err != nil {
				return n, err
			}
			n++
		default:
			return n, fmt.Errorf("entry %q: a link or special file (type %q); only folders and regular files are unpacked", h.Name, string(h.Typeflag))
		}
	}
}

func safeTarName(name string) bool {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") || path.Clean(name) != name {
		return false
	}
	for _, p := range strings.Split(name, "/") {
		if p == ".." {
			return false
		}
	}
	return true
}

// serverJob is a server's job as its summary shows it: the outputs' folder is on the server's
// disk, so the summary says how to fetch them instead.
func serverJob(j job.Job) job.Job {
	if j.OutputDir != "" {
		j.OutputDir = "kept; fetch them with: berth job outputs " + j.ID + " --out DIR"
	}
	return j
}
