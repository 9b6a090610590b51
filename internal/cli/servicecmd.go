package cli

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/spf13/cobra"

	"github.com/berthproject/berth/internal/service"
)

func newServiceCmd(g *globals) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Long-running containers behind berth's proxy, started on demand and stopped when idle",
		Long: `A service is a folder with a Dockerfile (exactly one EXPOSE) and an optional container.json
(cpu, gpu, memory, on_demand, shutdown_timeout, storage, shm_size, env). berth builds it,
starts it when the first request reaches /proxy/<name>/ (or at once unless on_demand), and
stops it after shutdown_timeout minutes without requests or open connections.`,
	}
	cf.register(cmd)
	var name, pkg string
	var wait, quiet bool
	create := &cobra.Command{
		Use:   "create DIR",
		Short: "Create (or update) a service from a folder; its image builds in the background",
		Example: `  berth service create examples/service-echo --name echo
  curl -H "Authorization: Bearer $BERTH_TOKEN" $BERTH_SERVER/proxy/echo/`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			if name == "" {
				name = strings.ToLower(filepath.Base(filepath.Clean(args[0])))
			}
			body, err := tarFolder(args[0])
			if err != nil {
				return withCode(ExitUsage, err)
			}
			var sv service.Service
			q := url.Values{"name": {name}, "package": {pkg}}
			if err := c.raw(cmd.Context(), http.MethodPost, "/api/v1/services?"+q.Encode(), "application/x-tar", bytes.NewReader(body), jsonInto(&sv)); err != nil {
				return err
			}
			for _, w := range sv.Warnings {
				fmt.Fprintf(g.stderr, "berth: warning: %s\n", w)
			}
			if wait {
				// The build's own output is followed as it is written (--quiet: states only).
				fmt.Fprintf(g.stderr, "berth: building %s\n", sv.Name)
				logPath := "/api/v1/services/" + url.PathEscape(sv.Name) + "/build-log"
				var shown int64
				follow := func() {
					// Until the build starts, the stored log may still be the previous build's.
					if quiet || sv.ImageState == service.ImagePendingValidation {
						return
					}
					if n, err := c.tailFile(cmd.Context(), logPath, shown, g.stderr); err == nil {
						shown = n
					}
				}
				last := ""
				for sv.ImageState == service.ImagePendingValidation || sv.ImageState == service.ImageValidating {
					if sv.ImageState != last {
						fmt.Fprintf(g.stderr, "berth: image %s\n", sv.ImageState)
						last = sv.ImageState
					}
					follow()
					select {
					case <-cmd.Context().Done():
						return cmd.Context().Err()
					case <-time.After(500 * time.Millisecond):
					}
					if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/services/"+url.PathEscape(sv.Name), nil, &sv); err != nil {
						return err
					}
				}
				follow()
			}
			err = printOut(g.stdout, cf.output, sv, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "service %s: image %s, container %s (port %d)\n", sv.Name, sv.ImageState, sv.ContainerState, sv.Port)
				return err
			})
			if err != nil {
				return err
			}
			if sv.ImageState == service.ImageError {
				return withCode(ExitFailure, fmt.Errorf("image build failed: %s", sv.ImageReason))
			}
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "service name (default: the folder's name)")
	create.Flags().BoolVarP(&wait, "wait", "w", false, "wait until the image is built and validated (READY or ERROR), showing the build's output")
	create.Flags().BoolVarP(&quiet, "quiet", "q", false, "with --wait, show only the image's states, not the build's output")
	create.Flags().StringVar(&pkg, "package", "", "the package it belongs to, for #{x.Package:Entity} env values (default: its name; fixed when the service is first created)")
	var project string
	list := &cobra.Command{
		Use: "list", Short: "List your project's services and their states (an admin: every project's)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			var out struct {
				Services []service.Service `json:"services"`
			}
			path := "/api/v1/services"
			if project != "" {
				path += "?" + url.Values{"project": {project}}.Encode()
			}
			if err := c.do(cmd.Context(), http.MethodGet, path, nil, &out); err != nil {
				return err
			}
			return printOut(g.stdout, cf.output, out.Services, func(w io.Writer) error {
				t := newTable(w, "NAME", "PROJECT", "IMAGE", "CONTAINER", "SINCE", "REASON")
				for _, s := range out.Services {
					reason := s.ContainerReason
					if s.ImageReason != "" {
						reason = s.ImageReason
					}
					t.row(s.Name, s.Project, s.ImageState, s.ContainerState, humanTime(s.ContainerChangedAt), firstLine(reason))
				}
				return t.flush()
			})
		},
	}
	list.Flags().StringVar(&project, "project", "", "only this project's services (an admin's token; others see their own project's)")
	simple := func(use, short, method, suffix string) *cobra.Command {
		return &cobra.Command{
			Use: use + " NAME", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := cf.client(g)
				if err != nil {
					return err
				}
				var sv service.Service
				if err := c.do(cmd.Context(), method, "/api/v1/services/"+url.PathEscape(args[0])+suffix, nil, &sv); err != nil {
					return err
				}
				return printOut(g.stdout, cf.output, sv, func(w io.Writer) error {
					if suffix == "" {
						return printService(w, sv)
					}
					_, err := fmt.Fprintf(w, "service %s: image %s, container %s\n", sv.Name, sv.ImageState, sv.ContainerState)
					return err
				})
			},
		}
	}
	var follow bool
	var win logWindowFlags
	logs := &cobra.Command{
		Use: "logs NAME", Short: "Print the running container's output", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			q, err := win.query()
			if err != nil {
				return err
			}
			if follow {
				q += "&follow=1"
			}
			q = strings.Replace(q, "&", "?", 1)
			return c.raw(cmd.Context(), http.MethodGet, "/api/v1/services/"+url.PathEscape(args[0])+"/logs"+q, "", nil, g.stdout)
		},
	}
	logs.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing as it runs")
	win.register(logs, "the container's lines (stdout and stderr together)")
	buildLog := &cobra.Command{
		Use: "build-log NAME", Short: "Print the image's build log", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			return c.raw(cmd.Context(), http.MethodGet, "/api/v1/services/"+url.PathEscape(args[0])+"/build-log", "", nil, g.stdout)
		},
	}
	var outFile string
	ctxCmd := &cobra.Command{
		Use: "context NAME", Short: "Download the build context (a tar)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			w := g.stdout
			if outFile != "" {
				f, err := os.Create(outFile)
				if err != nil {
					return withCode(ExitUsage, err)
				}
				defer f.Close()
				w = f
			}
			return c.raw(cmd.Context(), http.MethodGet, "/api/v1/services/"+url.PathEscape(args[0])+"/context", "", nil, w)
		},
	}
	ctxCmd.Flags().StringVarP(&outFile, "output-file", "O", "", "write the tar to this file")
	entity := &cobra.Command{
		Use:     "entity PACKAGE NAME JSON",
		Short:   "Store an entity (a connection or secret) of a package of your project, for #{x.PACKAGE:NAME} in its services' env",
		Example: `  berth service entity echo Db '{"host": "db", "password": "s3cret"}'`,
		Args:    cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			return c.raw(cmd.Context(), http.MethodPut, "/api/v1/packages/"+url.PathEscape(args[0])+"/entities/"+url.PathEscape(args[1]),
				"application/json", strings.NewReader(args[2]), nil)
		},
	}
	var linger time.Duration
	ws := &cobra.Command{
		Use:   "ws NAME [PATH]",
		Short: "Open a WebSocket to a service through the proxy: lines from stdin are sent, every message received is printed",
		Long: `Open a WebSocket to a service through the proxy. Each line read from stdin is sent as a text
message; every message the service sends is printed on its own line as it arrives, however
many it sends for each one received, and also when nothing was sent. When stdin ends, the
command keeps printing until the service has sent nothing for --linger, or closes.`,
		Example: `  echo hello | berth service ws echo /ws
  berth service ws echo /ws          # type lines; Ctrl-D closes`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if linger < 0 {
				return withCode(ExitUsage, fmt.Errorf("--linger %s: must be 0 or more", linger))
			}
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			path := "/"
			if len(args) == 2 {
				path = "/" + strings.TrimPrefix(args[1], "/")
			}
			u := "ws" + strings.TrimPrefix(c.base, "http") + "/proxy/" + url.PathEscape(args[0]) + path
			ctx := cmd.Context()
			conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{
				HTTPHeader: http.Header{"Authorization": {"Bearer " + c.token}}})
			if err != nil && resp == nil && ctx.Err() == nil {
				return c.unreachable(err)
			}
			if err != nil {
				return withCode(ExitFailure, fmt.Errorf("websocket %s: %w", u, err))
			}
			defer conn.CloseNow()
			conn.SetReadLimit(-1) // a service's message is printed whole, however large
			return wsSession(ctx, conn, cmd.InOrStdin(), g.stdout, linger)
		},
	}
	ws.Flags().DurationVar(&linger, "linger", time.Second, "after stdin ends, keep printing until the service has been quiet this long (0: close at once)")
	cmd.AddCommand(ws, create, list, newServicePublishCmd(g, &cf),
		simple("get", "Show a service with its state transitions", http.MethodGet, ""),
		simple("start", "Start a service and wait until it is ready", http.MethodPost, "/start"),
		simple("stop", "Stop a service", http.MethodPost, "/stop"),
		simple("rebuild", "Build the image again from the stored folder", http.MethodPost, "/rebuild"),
		logs, buildLog, ctxCmd, entity,
		newDeleteCmd(g, &cf, "NAME", "Delete a service: its container (stopped first), image, network, build context and record", "/api/v1/services/",
			"delete even while requests or connections are in flight"))
	return cmd
}

// printService is service get's table form: its state, then its recorded transitions.
func printService(w io.Writer, sv service.Service) error {
	last := "-"
	if sv.LastActivity != nil {
		last = humanTime(*sv.LastActivity)
	}
	if err := fields(w,
		"name", sv.Name, "project", sv.Project, "package", sv.Package, "port", fmt.Sprint(sv.Port), "image", sv.Image,
		"image state", sv.ImageState+"  ("+humanTime(sv.ImageChangedAt)+")", "image reason", firstLine(sv.ImageReason),
		"container", sv.ContainerState+"  ("+humanTime(sv.ContainerChangedAt)+")", "container reason", firstLine(sv.ContainerReason),
		"connections", fmt.Sprint(sv.ActiveConnections), "last activity", last); err != nil {
		return err
	}
	for _, wn := range sv.Warnings {
		fmt.Fprintf(w, "warning: %s\n", wn)
	}
	if len(sv.Events) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nevents:")
	t := newTable(w, "AT", "KIND", "STATE", "REASON")
	for _, e := range sv.Events {
		t.row(humanTime(e.At), e.Kind, e.State, firstLine(e.Reason))
	}
	return t.flush()
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// tarFolder packs a folder (regular files and folders) as the build context.
func tarFolder(dir string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." || (d.IsDir() && d.Name() == ".git") {
			if rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() && !fi.IsDir() {
			return nil
		}
		hdr, _ := tar.FileInfoHeader(fi, "")
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// wsSession sends each line of in as a text message and prints every message received, as it
// arrives, from a reader of its own. Once in ends it waits until nothing came for linger (or
// the service closed), then closes.
func wsSession(ctx context.Context, conn *websocket.Conn, in io.Reader, out io.Writer, linger time.Duration) error {
	got := make(chan struct{}, 1) // a message was printed
	readErr := make(chan error, 1)
	go func() {
		for {
			_, b, err := conn.Read(ctx)
			if err != nil {
				readErr <- err
				return
			}
			fmt.Fprintln(out, string(b))
			select {
			case got <- struct{}{}:
			default:
			}
		}
	}()
	closed := func(err error) error {
		switch websocket.CloseStatus(err) {
		case websocket.StatusNormalClosure, websocket.StatusGoingAway:
			return nil
		}
		return withCode(ExitFailure, fmt.Errorf("websocket: %w", err))
	}
	lines := make(chan string)
	scanErr := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		scanErr <- sc.Err()
	}()
	for done := false; !done; {
		select {
		case l := <-lines:
			if err := conn.Write(ctx, websocket.MessageText, []byte(l)); err != nil {
				return withCode(ExitFailure, fmt.Errorf("websocket: send: %w", err))
			}
		case err := <-scanErr:
			if err != nil {
				return withCode(ExitFailure, fmt.Errorf("read stdin: %w", err))
			}
			done = true
		case err := <-readErr:
			return closed(err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// stdin ended: print what still comes until the service is quiet for linger.
	quiet := time.NewTimer(linger)
	defer quiet.Stop()
	for {
		select {
		case <-got:
			quiet.Reset(linger)
		case err := <-readErr:
			return closed(err)
		case <-quiet.C:
			conn.Close(websocket.StatusNormalClosure, "")
			// The reader ends with the connection: nothing is printed after the return.
			select {
			case <-readErr:
			case <-time.After(5 * time.Second):
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
