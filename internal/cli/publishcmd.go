package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/registry"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/service"
	"github.com/berthproject/berth/internal/spec"
)

// berth service publish and berth component publish: build a folder with this machine's
// engine, tag it <registry>/<project>/<name>:<version>, push it with the API token as the
// registry password (the engine runs the registry's token flow against berth), then register
// it at the server, which pulls it and runs it by digest. Without a registry the image is
// tagged <project>/<name>:<version> locally only, for a server sharing this engine.

// NoRegistryMessage is what publish prints when no registry is configured.
const NoRegistryMessage = "No registry configured. Image tagged locally only."

var reVersion = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// publishFlags are publish's own flags.
type publishFlags struct {
	version, name, registry, project string
}

func (p *publishFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&p.version, "version", "", "the image's version: its tag (required)")
	cmd.Flags().StringVar(&p.registry, "registry", "", "push to this registry, host:port (default: env BERTH_REGISTRY, else the current context's, see berth context set-registry; none: tag locally only)")
	cmd.Flags().StringVar(&p.project, "project", "", "the project the image is published in (default: the token's)")
}

// publishImage builds dir and tags it <registry>/<project>/<name>:<version>, pushes it when a
// registry is configured, and returns the reference.
func publishImage(ctx context.Context, g *globals, c *client, dir, name string, p publishFlags, labels map[string]string) (string, error) {
	if !reVersion.MatchString(p.version) {
		return "", withCode(ExitUsage, fmt.Errorf("--version %q: use a tag, letters, digits, '_', '.' and '-' (at most 128), e.g. 1.0.0", p.version))
	}
	if fi, err := os.Stat(filepath.Join(dir, "Dockerfile")); err != nil || !fi.Mode().IsRegular() {
		return "", withCode(ExitUsage, fmt.Errorf("%s has no Dockerfile", dir))
	}
	reg, err := resolveRegistry(p.registry, c.from)
	if err != nil {
		return "", withCode(ExitUsage, err)
	}
	project := p.project
	if project == "" {
		var u struct {
			Project string `json:"project"`
		}
		if err := c.do(ctx, http.MethodGet, "/api/v1/storage/usage", nil, &u); err != nil {
			return "", fmt.Errorf("find the token's project (or pass --project): %w", err)
		}
		project = u.Project
	}
	ref := project + "/" + name + ":" + p.version
	if reg != "" {
		ref = reg + "/" + ref
	}
	eng, err := openEngine(ctx, "")
	if err != nil {
		return "", withCode(ExitFailure, err)
	}
	defer eng.Close()
	fmt.Fprintf(g.stderr, "berth: building %s from %s\n", ref, dir)
	if _, err := eng.BuildImage(ctx, runtime.BuildSpec{ContextDir: dir, Tags: []string{ref}, Labels: labels}, g.stderr); err != nil {
		return "", withCode(ExitFailure, fmt.Errorf("build %s: %w", ref, err))
	}
	if reg == "" {
		fmt.Fprintln(g.stderr, NoRegistryMessage)
		return ref, nil
	}
	fmt.Fprintf(g.stderr, "berth: pushing %s\n", ref)
	// The engine logs in with the API token as the password: berth, the registry's token
	// issuer, answers a JWT of minutes for this project's repository. Nothing is stored.
	digest, err := eng.PushImage(ctx, ref, runtime.RegistryAuth{Username: "berth", Password: c.token, ServerAddress: reg}, prefixLines(g.stderr, "berth: push: "))
	if err != nil {
		return "", withCode(ExitFailure, fmt.Errorf("push %s: %w%s", ref, err, pushHint(err)))
	}
	fmt.Fprintf(g.stderr, "berth: pushed %s (digest %s)\n", ref, digest)
	return ref, nil
}

// pushHint says what a refused push usually means.
func pushHint(err error) string {
	l := strings.ToLower(err.Error())
	if strings.Contains(l, "denied") || strings.Contains(l, "unauthorized") || strings.Contains(l, "authentication required") {
		return "\n  the registry refused the token: a push needs a member's token of the image's project (not read-only, not scoped)"
	}
	return ""
}

// prefixLines writes each whole line with a prefix (readProgress writes whole lines).
func prefixLines(w io.Writer, prefix string) io.Writer { return &prefixWriter{w: w, prefix: prefix} }

type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line != "" {
			if _, err := io.WriteString(p.w, p.prefix+line); err != nil {
				return 0, err
			}
		}
	}
	return len(b), nil
}

func newServicePublishCmd(g *globals, cf *clientFlags) *cobra.Command {
	var p publishFlags
	var pkg string
	cmd := &cobra.Command{
		Use:   "publish DIR --version V [--name N]",
		Short: "Build a service folder here, push it to the registry and deploy it from there",
		Long: `Build the folder's Dockerfile with this machine's engine, tag the image
<registry>/<project>/<name>:<version>, push it (the API token is the registry password: berth
issues the registry's short-lived token), then create or update the service at the server,
which pulls the image, validates it (exactly one EXPOSE) and runs it by digest. The folder's
container.json, if any, goes with it. The command waits until the image is READY or ERROR.

Without a registry (no --registry, BERTH_REGISTRY or context registry) the image is tagged
<project>/<name>:<version> on this engine only, which a server sharing the engine can run.`,
		Example: `  berth context set-registry reg.example:5000
  berth service publish examples/service-echo --version 1.0.0 --name echo`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			name := p.name
			if name == "" {
				name = strings.ToLower(filepath.Base(filepath.Clean(args[0])))
			}
			cj, err := os.ReadFile(filepath.Join(args[0], "container.json"))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return withCode(ExitUsage, err)
			}
			if _, err := spec.ParseContainerJSON(cj); err != nil {
				return withCode(ExitUsage, err)
			}
			ref, err := publishImage(cmd.Context(), g, c, args[0], name, p, nil)
			if err != nil {
				return err
			}
			var sv service.Service
			q := url.Values{"name": {name}, "package": {pkg}, "image": {ref}}
			if err := c.raw(cmd.Context(), http.MethodPost, "/api/v1/services?"+q.Encode(), "application/json", bytes.NewReader(cj), jsonInto(&sv)); err != nil {
				return err
			}
			for _, w := range sv.Warnings {
				fmt.Fprintf(g.stderr, "berth: warning: %s\n", w)
			}
			if err := waitImage(cmd.Context(), g, c, &sv); err != nil {
				return err
			}
			err = printOut(g.stdout, cf.output, sv, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "service %s: image %s (%s), container %s (port %d)\n", sv.Name, sv.ImageState, sv.Image, sv.ContainerState, sv.Port)
				return err
			})
			if err != nil {
				return err
			}
			if sv.ImageState == service.ImageError {
				return withCode(ExitFailure, fmt.Errorf("image failed: %s", sv.ImageReason))
			}
			return nil
		},
	}
	p.register(cmd)
	cmd.Flags().StringVar(&p.name, "name", "", "service name, and the image's (default: the folder's name)")
	cmd.Flags().StringVar(&pkg, "package", "", "the package it belongs to (default: its name; fixed when the service is first created)")
	return cmd
}

// waitImage follows a service's image until READY or ERROR, printing its states and the
// build log (the pull's progress) as it is written.
func waitImage(ctx context.Context, g *globals, c *client, sv *service.Service) error {
	logPath := "/api/v1/services/" + url.PathEscape(sv.Name) + "/build-log"
	var shown int64
	follow := func() {
		if sv.ImageState == service.ImagePendingValidation {
			return // the stored log may still be the previous image's
		}
		if n, err := c.tailFile(ctx, logPath, shown, g.stderr); err == nil {
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
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		if err := c.do(ctx, http.MethodGet, "/api/v1/services/"+url.PathEscape(sv.Name), nil, sv); err != nil {
			return err
		}
	}
	follow()
	return nil
}

func newComponentPublishCmd(g *globals, cf *clientFlags) *cobra.Command {
	var p publishFlags
	var shared bool
	cmd := &cobra.Command{
		Use:   "publish DIR --version V",
		Short: "Build a component folder here, push it to the registry and register it",
		Long: `DIR holds a Dockerfile and component.json. Build the image with this machine's engine, tag
it <registry>/<project>/<id>:<version>, push it (the API token is the registry password), then
register the component with that image. Without a registry the image is tagged
<project>/<id>:<version> on this engine only, which a server sharing the engine can run.`,
		Example: `  berth component publish examples/component-sales --version 1.0.0`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			file := filepath.Join(args[0], "component.json")
			raw, err := os.ReadFile(file)
			if err != nil {
				return withCode(ExitUsage, fmt.Errorf("%s needs a component.json: %w", args[0], err))
			}
			var def map[string]any
			if err := json.Unmarshal(raw, &def); err != nil {
				return withCode(ExitUsage, fmt.Errorf("%s: %w", file, err))
			}
			id, _ := def["id"].(string)
			if id == "" {
				return withCode(ExitUsage, fmt.Errorf("%s: no id", file))
			}
			ref, err := publishImage(cmd.Context(), g, c, args[0], strings.ToLower(id), p,
				map[string]string{runtime.LabelKind: runtime.KindComponent})
			if err != nil {
				return err
			}
			def["image"] = ref
			raw, _ = json.Marshal(def)
			if _, err := spec.ParseComponent(raw, file); err != nil {
				return withCode(ExitUsage, err)
			}
			path := "/api/v1/components"
			if shared {
				path += "?shared=true"
			}
			if err := c.raw(cmd.Context(), http.MethodPost, path, "application/json", bytes.NewReader(raw), nil); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "registered %s (image %s)\n", id, ref)
			return nil
		},
	}
	p.register(cmd)
	cmd.Flags().BoolVar(&shared, "shared", false, "usable by every project, not only the token's (needs an admin token)")
	return cmd
}

// pullAuth is the server's registry credential for a published service's image: a pull-only
// JWT berth issues itself for the service's project, valid for that project's repositories
// on the registry at host only. No credential is stored, and since the service's project is
// checked against the image's, no project can have the server pull another's image.
func pullAuth(host string, iss func() *registry.Issuer) func(project, h, repo string) (runtime.RegistryAuth, error) {
	return func(project, h, repo string) (runtime.RegistryAuth, error) {
		if h != host {
			return runtime.RegistryAuth{}, fmt.Errorf("registry %s: this server pulls only from its registry, %s (--registry-host)", h, host)
		}
		i := iss()
		if i == nil {
			return runtime.RegistryAuth{}, errors.New("no registry token issuer (--registry-service)")
		}
		tok, err := i.Issue(auth.Principal{Name: "berth-server:" + project, Role: auth.RoleMember, Project: project},
			[]string{"repository:" + repo + ":pull"})
		if err != nil {
			return runtime.RegistryAuth{}, err
		}
		if len(tok.Granted) == 0 {
			return runtime.RegistryAuth{}, fmt.Errorf("repository %s is not project %s's", repo, project)
		}
		return runtime.RegistryAuth{ServerAddress: host, RegistryToken: tok.Token}, nil
	}
}

// registryOf splits an image reference that names a registry into the registry's host and
// the repository; ok is false for an image on the engine only (no host, as Docker decides:
// the first element holds a '.' or ':' or is localhost).
func registryOf(ref string) (host, repo string, ok bool) {
	name := ref
	if i := strings.Index(name, "@"); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	first, rest, found := strings.Cut(name, "/")
	if !found || !(strings.ContainsAny(first, ".:") || first == "localhost") {
		return "", "", false
	}
	return first, rest, true
}

// componentPull resolves a component's image before a run (component.Config.Pull): one that
// names the registry is pulled every time with a pull-only token of the job's project, so
// the registry itself refuses another project's image even when the engine has it already.
func componentPull(d runtime.Distributor, host string, iss func() *registry.Issuer) func(ctx context.Context, project, ref string, progress io.Writer) (string, error) {
	authFor := pullAuth(host, iss)
	return func(ctx context.Context, project, ref string, progress io.Writer) (string, error) {
		h, repo, ok := registryOf(ref)
		if !ok {
			return ref, nil
		}
		if host == "" {
			return "", fmt.Errorf("it names registry %s, and this server pulls from no registry (berth server --registry-host)", h)
		}
		a, err := authFor(project, h, repo)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(progress, "pulling %s\n", ref)
		img, err := d.PullImage(ctx, ref, a, progress)
		if err != nil {
			return "", fmt.Errorf("pull: %w", err)
		}
		for _, rd := range img.RepoDigests {
			if strings.HasPrefix(rd, h+"/"+repo+"@") {
				return rd, nil
			}
		}
		return "", fmt.Errorf("pull: the engine knows no digest of it from %s", h)
	}
}
