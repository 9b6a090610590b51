package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/spec"
	"github.com/berthproject/berth/internal/store"
)

// A published service: its image is not built from a folder but named by a reference,
// <registry>/<project>/<name>:<version> (berth service publish pushed it there), or
// <project>/<name>:<version> on this engine (published without a registry). The server pulls
// it with a credential of the service's own project (Config.RegistryAuth), writes the pull
// into the build log, validates it as a built image, and runs it by digest.

// ErrImageProject: an image reference names a repository of another project than the
// service's. A project's services run only its own images.
var ErrImageProject = errors.New("service: the image belongs to another project")

// imageRef is a parsed image reference.
type imageRef struct {
	host    string // "" for an image on this engine only
	repo    string // p1/app
	project string // the repository's first path element
}

var reRepo = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)

// parseImageRef splits host/repo:tag (or @digest); the host is the first element when it
// looks like one (a '.' or ':' in it, or localhost), as Docker decides.
func parseImageRef(ref string) (imageRef, error) {
	bad := func(msg string) (imageRef, error) {
		return imageRef{}, &spec.ValidationError{Problems: []spec.Problem{{Field: "image", Message: fmt.Sprintf("%q: %s", ref, msg)}}}
	}
	name := ref
	if i := strings.Index(name, "@"); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	var r imageRef
	if first, rest, ok := strings.Cut(name, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		r.host, name = first, rest
	}
	if !reRepo.MatchString(name) {
		return bad("not an image reference; use <registry>/<project>/<name>:<version>")
	}
	r.repo = name
	first, _, ok := strings.Cut(name, "/")
	if !ok {
		return bad("names no project; use <registry>/<project>/<name>:<version>")
	}
	r.project = first
	return r, nil
}

func (m *Manager) imageRefPath(name string) string { return filepath.Join(m.dir(name), "image.ref") }

// pulledRef is the reference a published service's image is pulled from.
func (m *Manager) pulledRef(name string) (string, bool) {
	b, err := os.ReadFile(m.imageRefPath(name))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// CreateFromImage stores a service of project that runs a published image (ref), with its
// container.json (may be empty); the image is pulled and validated in the background
// (PENDING_VALIDATION → VALIDATING → READY | ERROR) as a built one is. The reference's
// project must be the service's: ErrImageProject otherwise.
func (m *Manager) CreateFromImage(ctx context.Context, project, name, pkg, ref string, containerJSON []byte) (Service, error) {
	if project == "" {
		project = store.DefaultProject
	}
	if !reName.MatchString(name) {
		return Service{}, &spec.ValidationError{Problems: []spec.Problem{{Field: "name", Message: fmt.Sprintf("%q: lowercase letters, digits and '-' (at most 63)", name)}}}
	}
	r, err := parseImageRef(ref)
	if err != nil {
		return Service{}, err
	}
	if r.project != project {
		return Service{}, fmt.Errorf("image %s is project %s's, the service is project %s's: %w", ref, r.project, project, ErrImageProject)
	}
	if r.host != "" && m.cfg.RegistryAuth == nil {
		return Service{}, &spec.ValidationError{Problems: []spec.Problem{{Field: "image", Message: fmt.Sprintf("%q names registry %s, and this server pulls from no registry (berth server --registry-host)", ref, r.host)}}}
	}
	if r.host != "" {
		if _, err := m.cfg.RegistryAuth(project, r.host, r.repo); err != nil {
			return Service{}, &spec.ValidationError{Problems: []spec.Problem{{Field: "image", Message: err.Error()}}}
		}
	}
	prev, found, pkg, err := m.owner(ctx, project, name, pkg)
	if err != nil {
		return Service{}, err
	}
	cj, err := spec.ParseContainerJSON(containerJSON)
	if err != nil {
		return Service{}, err
	}
	warnings, err := m.checkDefinition(ctx, project, pkg, cj)
	if err != nil {
		return Service{}, err
	}
	if err := os.MkdirAll(m.dir(name), 0o755); err != nil {
		return Service{}, err
	}
	tmp, err := writeTemp(m.dir(name), "image-*.ref", []byte(ref+"\n"))
	if err != nil {
		return Service{}, err
	}
	defer os.Remove(tmp)
	cjJSON, _ := json.Marshal(cj)
	now := time.Now().UTC()
	row := store.ServiceRow{Name: name, Package: pkg, Project: project, ContainerJSON: string(cjJSON),
		ImageState: ImagePendingValidation, ImageChangedAt: now, ContainerState: Stopped, ContainerChangedAt: now, CreatedAt: now}
	if found {
		row.Port = prev.Port
		row.ContainerState, row.ContainerID, row.ContainerChangedAt, row.CreatedAt = prev.ContainerState, prev.ContainerID, prev.ContainerChangedAt, prev.CreatedAt
	}
	if err := m.st.PutService(ctx, row); errors.Is(err, store.ErrConflict) {
		return Service{}, fmt.Errorf("service %s: %w", name, ErrNameTaken)
	} else if err != nil {
		return Service{}, err
	}
	if err := os.Rename(tmp, m.imageRefPath(name)); err != nil {
		return Service{}, fmt.Errorf("store the image of service %s: %w", name, err)
	}
	os.Remove(m.ContextPath(name)) // no folder: the image is pulled
	m.mu.Lock()
	m.known[name] = project
	m.mu.Unlock()
	if err := m.setImage(ctx, name, ImagePendingValidation, "", ""); err != nil {
		return Service{}, err
	}
	m.wg.Add(1)
	go func() { defer m.wg.Done(); m.build(m.ctx, name) }()
	svc, err := m.Get(ctx, name)
	svc.Warnings = warnings
	return svc, err
}

// pull gets a published service's image (build calls it in VALIDATING), validates it as a
// built image (one exposed TCP port, the labels) and records it by digest: READY, or fail.
func (m *Manager) pull(ctx context.Context, name, ref string, fail func(string)) {
	logf, err := os.Create(m.BuildLogPath(name))
	if err != nil {
		fail(err.Error())
		return
	}
	defer logf.Close()
	fail2 := func(reason string) {
		fmt.Fprintf(logf, "error: %s\n", reason)
		fail(reason)
	}
	row, err := m.st.GetService(ctx, name)
	if err != nil {
		fail2(err.Error())
		return
	}
	r, err := parseImageRef(ref)
	if err != nil {
		fail2(err.Error())
		return
	}
	if r.project != projectOf(row) { // checked at create; a stored file is checked again
		fail2(fmt.Sprintf("image %s is project %s's, the service is project %s's", ref, r.project, projectOf(row)))
		return
	}
	var img runtime.Image
	pinned := ""
	if r.host == "" {
		// Published without a registry: it must be on this engine (a server sharing it).
		fmt.Fprintf(logf, "using %s from this engine (no registry)\n", ref)
		if img, err = m.rt.InspectImage(ctx, ref); err != nil {
			fail2(fmt.Sprintf("image %s is not on this server's engine: it was published without a registry, so the server must share the publisher's engine (%v)", ref, err))
			return
		}
		pinned = img.ID
	} else {
		d, ok := m.rt.(runtime.Distributor)
		if !ok {
			fail2("the runtime cannot pull images")
			return
		}
		if m.cfg.RegistryAuth == nil {
			fail2(fmt.Sprintf("image %s names registry %s, and this server pulls from no registry (berth server --registry-host)", ref, r.host))
			return
		}
		a, err := m.cfg.RegistryAuth(projectOf(row), r.host, r.repo)
		if err != nil {
			fail2(err.Error())
			return
		}
		fmt.Fprintf(logf, "pulling %s\n", ref)
		if img, err = d.PullImage(ctx, ref, a, logf); err != nil {
			fail2(fmt.Sprintf("pull %s: %v", ref, err))
			return
		}
		for _, rd := range img.RepoDigests {
			if strings.HasPrefix(rd, r.host+"/"+r.repo+"@") {
				pinned = rd
			}
		}
		if pinned == "" {
			fail2(fmt.Sprintf("pull %s: the engine knows no digest of it from %s", ref, r.host))
			return
		}
	}
	port, err := exposedPort(img)
	if err != nil {
		fail2(err.Error())
		return
	}
	if hp := img.Labels[LabelHealthPath]; hp != "" && !strings.HasPrefix(hp, "/") {
		fail2(fmt.Sprintf("label %s=%q must be a path starting with /", LabelHealthPath, hp))
		return
	}
	if err := checkImagePrefixLabel(img); err != nil {
		fail2(err.Error())
		return
	}
	row.Port = port
	row.HealthPath = img.Labels[LabelHealthPath]
	row.ImageRef = pinned
	row.ImageState = ImageReady
	if err := m.st.PutService(ctx, row); err != nil {
		fail2(err.Error())
		return
	}
	if err := m.setImage(ctx, name, ImageReady, pinned, ""); err != nil {
		fail2(err.Error())
		return
	}
	fmt.Fprintf(logf, "ready: %s (port %d, health path %q)\n", pinned, row.Port, row.HealthPath)
	var cj spec.ContainerJSON
	json.Unmarshal([]byte(row.ContainerJSON), &cj)
	if !cj.OnDemand {
		if _, err := m.Ensure(ctx, name); err != nil {
			m.log.Warn("start service", "service", name, "err", err)
		}
	}
}

// exposedPort is the image's one exposed TCP port, as a Dockerfile's EXPOSE is checked.
func exposedPort(img runtime.Image) (int, error) {
	if len(img.ExposedPorts) != 1 {
		return 0, fmt.Errorf("the image exposes %d ports %v; a service exposes exactly one (EXPOSE), the proxy's", len(img.ExposedPorts), img.ExposedPorts)
	}
	p, proto, _ := strings.Cut(img.ExposedPorts[0], "/")
	n, err := strconv.Atoi(p)
	if err != nil || (proto != "" && proto != "tcp") || n < 1 || n > 65535 {
		return 0, fmt.Errorf("the image exposes %s; a service exposes one TCP port", img.ExposedPorts[0])
	}
	return n, nil
}
