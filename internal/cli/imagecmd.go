package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berthproject/berth/internal/image"
)

func newImageCmd(g *globals) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "image",
		Short: "List berth's images, remove one, run the image collector (admin)",
		Long: `Every image berth builds (generated berth/gen:*, service berth/svc-*, component
berth/component-*) or uses is recorded with its kind, size, labels, ID, creation and when it
was last used (each ensure, cache hit and container start). Past the server's
--image-disk-limit the collector evicts the least recently used removable images down to
--image-disk-low, after each build and every --image-gc-interval: never a base image, never
one a running container uses. An evicted generated or service image is built again at its
next use. A custom image opts in to removal with the label berth.retention=prune-on-cleanup
(or Omniscope's visokio-image-retention=prune-on-cleanup).`,
	}
	cf.register(cmd)
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List berth's images, least recently used first",
		Example: "  berth image ls\n  berth image ls -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := checkOutput(cf.output); err != nil {
				return err
			}
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			var out struct {
				Images        []image.Record `json:"images"`
				RemovableSize int64          `json:"removable_size"`
				Limit         int64          `json:"limit"`
				Low           int64          `json:"low"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/images", nil, &out); err != nil {
				return err
			}
			if out.Images == nil {
				out.Images = []image.Record{}
			}
			return printOut(g.stdout, cf.output, out, func(w io.Writer) error {
				tb := newTable(w, "REF", "KIND", "SIZE", "CREATED", "LAST USED", "IN USE", "REMOVABLE", "ID")
				for _, r := range out.Images {
					removable := yesNo(r.Removable)
					if r.Removable && r.Keep != "" {
						removable = "kept: " + r.Keep
					}
					tb.row(r.Ref, r.Kind, image.HumanSize(r.Size), humanTime(r.Created), humanTimePtr(r.LastUsed),
						yesNo(r.InUse), removable, shortID(r.ID))
				}
				if err := tb.flush(); err != nil {
					return err
				}
				if out.Limit > 0 {
					fmt.Fprintf(w, "\nremovable images take %s of the %s limit (a collection evicts down to %s)\n",
						image.HumanSize(out.RemovableSize), image.HumanSize(out.Limit), image.HumanSize(out.Low))
				} else {
					fmt.Fprintf(w, "\nremovable images take %s (no limit set)\n", image.HumanSize(out.RemovableSize))
				}
				return nil
			})
		},
	}
	rm := &cobra.Command{
		Use:     "rm REF",
		Aliases: []string{"remove"},
		Short:   "Remove one of berth's images (never a base image or one in use)",
		Example: "  berth image rm berth/gen:0123456789abcdef",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), http.MethodDelete, "/api/v1/images/"+escapeRef(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "removed %s\n", args[0])
			return nil
		},
	}
	var dryRun bool
	gc := &cobra.Command{
		Use:   "gc [--dry-run]",
		Short: "Run the image collector now; --dry-run says what it would remove and why",
		Example: `  berth image gc --dry-run
  berth image gc`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := checkOutput(cf.output); err != nil {
				return err
			}
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			var plan image.Plan
			if err := c.do(cmd.Context(), http.MethodPost, fmt.Sprintf("/api/v1/images/gc?dry_run=%t", dryRun), nil, &plan); err != nil {
				return err
			}
			return printOut(g.stdout, cf.output, plan, func(w io.Writer) error {
				verb := "REMOVED"
				if plan.DryRun {
					verb = "WOULD REMOVE"
				}
				if len(plan.Evict) > 0 {
					tb := newTable(w, verb, "KIND", "SIZE", "LAST USED", "WHY")
					for _, e := range plan.Evict {
						why := e.Reason
						if e.Error != "" {
							why = "NOT REMOVED: " + e.Error
						}
						tb.row(e.Ref, e.Kind, image.HumanSize(e.Size), humanTimePtr(e.LastUsed), why)
					}
					if err := tb.flush(); err != nil {
						return err
					}
				}
				if len(plan.Kept) > 0 {
					fmt.Fprintln(w)
					tb := newTable(w, "KEPT", "KIND", "SIZE", "LAST USED", "WHY")
					for _, e := range plan.Kept {
						tb.row(e.Ref, e.Kind, image.HumanSize(e.Size), humanTimePtr(e.LastUsed), e.Reason)
					}
					if err := tb.flush(); err != nil {
						return err
					}
				}
				prefix := ""
				if plan.DryRun {
					prefix = "dry run: "
				}
				_, err := fmt.Fprintf(w, "%s%s\n", prefix, plan.Summary)
				return err
			})
		},
	}
	gc.Flags().BoolVar(&dryRun, "dry-run", false, "say what would be removed, and why; remove nothing")
	cmd.AddCommand(ls, rm, gc)
	return cmd
}

// escapeRef escapes each part of an image reference for a URL path, keeping its slashes.
func escapeRef(ref string) string {
	parts := strings.Split(ref, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
