package image

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/runtimes"
)

// Manager makes and finds images. Safe for concurrent use.
type Manager struct {
	rt  runtime.Runtime
	cfg Config
	log *slog.Logger

	builds    singleflight.Group // generated images by hash
	bootstrap singleflight.Group // base runtimes by language

	mu      sync.Mutex
	baseIDs map[string]baseID // base ref → ID, cached briefly for the hot path

	nBuilds, nHits, nFailures atomic.Int64

	records *Records // SetRecords; nil records nothing
}

// SetRecords makes Ensure note every image it hands out, and every image it builds, in rec.
// Call it before the first Ensure.
func (m *Manager) SetRecords(rec *Records) { m.records = rec }

type baseID struct {
	id   string
	seen time.Time
}

// baseIDTTL bounds how long Ensure trusts a cached base image ID.
const baseIDTTL = 5 * time.Second

// Stats count what the manager did since it was made.
type Stats struct {
	Builds, CacheHits, BuildFailures int64
}

// NewManager makes a manager on a runtime (which must implement runtime.Builder to build).
func NewManager(rt runtime.Runtime, cfg Config, log *slog.Logger) *Manager {
	d := DefaultConfig()
	if cfg.Suite == "" {
		cfg.Suite = d.Suite
	}
	if cfg.RecipeVersion == "" {
		cfg.RecipeVersion = d.RecipeVersion
	}
	if cfg.DebianMirror == "" {
		cfg.DebianMirror = d.DebianMirror
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = d.CacheDir
	}
	if cfg.LogDir == "" {
		cfg.LogDir = d.LogDir
	}
	if cfg.BuildNetwork == "" {
		cfg.BuildNetwork = d.BuildNetwork
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Manager{rt: rt, cfg: cfg, log: log, baseIDs: map[string]baseID{}}
}

// Stats returns the counters.
func (m *Manager) Stats() Stats {
	return Stats{Builds: m.nBuilds.Load(), CacheHits: m.nHits.Load(), BuildFailures: m.nFailures.Load()}
}

// BuildLog is the path of the stored build log of a generated image.
func (m *Manager) BuildLog(hash string) (string, error) {
	if hash == "" || strings.ContainsAny(hash, "/\\.") {
		return "", fmt.Errorf("build log: bad hash %q", hash)
	}
	p := filepath.Join(m.cfg.LogDir, hash+".log")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	// A prefix (the tag's 16 characters) names the log when it is unambiguous.
	if len(hash) >= 12 {
		if matches, _ := filepath.Glob(filepath.Join(m.cfg.LogDir, hash+"*.log")); len(matches) == 1 {
			return matches[0], nil
		}
	}
	return "", fmt.Errorf("no build log for %s in %s", hash, m.cfg.LogDir)
}

func (m *Manager) builder() (runtime.Builder, error) {
	b, ok := m.rt.(runtime.Builder)
	if !ok {
		return nil, fmt.Errorf("the %s runtime cannot build images", m.rt.Name())
	}
	return b, nil
}

// HasBase reports whether the language's base image exists and was made by the current recipe.
func (m *Manager) HasBase(ctx context.Context, lang string) (bool, error) {
	r, ok := recipes[lang]
	if !ok {
		_, err := BaseRef(lang)
		return false, err
	}
	img, err := m.rt.InspectImage(ctx, r.ref)
	if errors.Is(err, runtime.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return img.Labels[runtime.LabelRecipe] == recipeHash(r, m.cfg.Suite, m.cfg.RecipeVersion), nil
}

// Bootstrap builds a language's base runtime from Debian packages, unless the image of the
// current recipe exists. It reports whether it built.
func (m *Manager) Bootstrap(ctx context.Context, lang string, progress io.Writer) (runtime.Image, bool, error) {
	if progress == nil {
		progress = io.Discard
	}
	r, ok := recipes[lang]
	if !ok {
		_, err := BaseRef(lang)
		return runtime.Image{}, false, err
	}
	type result struct {
		img   runtime.Image
		built bool
	}
	v, err, _ := m.bootstrap.Do(lang, func() (any, error) {
		img, built, err := m.doBootstrap(ctx, r, progress)
		return result{img, built}, err
	})
	res, _ := v.(result)
	return res.img, res.built, err
}

func (m *Manager) doBootstrap(ctx context.Context, r recipe, progress io.Writer) (runtime.Image, bool, error) {
	hash := recipeHash(r, m.cfg.Suite, m.cfg.RecipeVersion)
	if img, err := m.rt.InspectImage(ctx, r.ref); err == nil && img.Labels[runtime.LabelRecipe] == hash {
		return img, false, nil
	}
	b, err := m.builder()
	if err != nil {
		return runtime.Image{}, false, err
	}
	t0 := time.Now()
	say := func(format string, args ...any) {
		fmt.Fprintf(progress, "[%3.0fs] %s: %s\n", time.Since(t0).Seconds(), r.lang, fmt.Sprintf(format, args...))
	}
	// One bootstrap of a recipe at a time (across processes sharing the cache): a second one
	// waits, then finds the image the first built.
	unlock, err := lockFile(ctx, filepath.Join(m.cfg.CacheDir, "bootstrap-"+r.lang+"-"+hash[:12]+".lock"),
		func() { say("waiting for another bootstrap of %s", r.ref) })
	if err != nil {
		return runtime.Image{}, false, err
	}
	defer unlock()
	if img, err := m.rt.InspectImage(ctx, r.ref); err == nil && img.Labels[runtime.LabelRecipe] == hash {
		say("built by another bootstrap: %s", r.ref)
		return img, false, nil
	}
	tarPath, err := m.rootfsTarball(ctx, r.lang, hash, say, func(ctx context.Context, dst string) error {
		say("debootstrap %s (%s, ~1 min) with %s", r.lang, m.cfg.Suite, strings.Join(r.packages, " "))
		return m.debootstrap(ctx, r, dst, progress, say)
	})
	if err != nil {
		return runtime.Image{}, false, err
	}
	// The intermediate tag is this bootstrap's own: another one (with another cache dir) on
	// the same engine never builds from it or removes it.
	var nonce [4]byte
	rand.Read(nonce[:])
	rootfsRef := "berth/rootfs:" + r.lang + "-" + hash[:12] + "-" + hex.EncodeToString(nonce[:])
	say("importing the root filesystem as %s", rootfsRef)
	f, err := os.Open(tarPath)
	if err != nil {
		return runtime.Image{}, false, err
	}
	_, err = b.ImportImage(ctx, f, rootfsRef, nil, map[string]string{
		runtime.LabelKind: runtime.KindBase, runtime.LabelRecipe: hash,
	})
	f.Close()
	if err != nil {
		return runtime.Image{}, false, fmt.Errorf("import %s: %w", rootfsRef, err)
	}
	// The base image keeps the root filesystem's layer; the intermediate tag only clutters
	// the image list (the tarball in CacheDir is the cache), built or not.
	defer func() {
		cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := m.rt.RemoveImage(cleanupCtx, rootfsRef); err != nil {
			m.log.Warn("remove intermediate root filesystem image", "image", rootfsRef, "err", err)
		}
	}()
	say("building %s: the user and the helper library", r.ref)
	dir, err := os.MkdirTemp("", "berth-base-")
	if err != nil {
		return runtime.Image{}, false, err
	}
	defer os.RemoveAll(dir)
	df := strings.ReplaceAll(r.dockerfile, "{{ROOTFS}}", rootfsRef)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		return runtime.Image{}, false, err
	}
	for _, sub := range r.files {
		if err := copyEmbedded(sub, dir); err != nil {
			return runtime.Image{}, false, err
		}
	}
	img, err := b.BuildImage(ctx, runtime.BuildSpec{
		ContextDir: dir, Tags: []string{r.ref}, Network: m.cfg.BuildNetwork,
		Labels: map[string]string{runtime.LabelKind: runtime.KindBase, runtime.LabelRecipe: hash},
	}, prefixWriter(progress, "  | "))
	if err != nil {
		return runtime.Image{}, false, fmt.Errorf("build %s: %w", r.ref, err)
	}
	m.mu.Lock()
	delete(m.baseIDs, r.ref)
	m.mu.Unlock()
	say("done in %.0fs: %s", time.Since(t0).Seconds(), r.ref)
	return img, true, nil
}

// rootfsTarball returns the cached root filesystem tarball of a recipe, calling produce to
// write it (to a temporary path in the cache) when it is not cached yet.
func (m *Manager) rootfsTarball(ctx context.Context, lang, hash string, say func(string, ...any),
	produce func(ctx context.Context, dst string) error) (string, error) {
	tarPath := filepath.Join(m.cfg.CacheDir, "rootfs-"+lang+"-"+hash[:12]+".tar")
	if _, err := os.Stat(tarPath); err == nil {
		say("root filesystem cached at %s", tarPath)
		return tarPath, nil
	}
	// Another bootstrap of the recipe (another process) may be making it: wait for it.
	unlock, err := lockFile(ctx, tarPath+".lock", func() { say("waiting for another bootstrap of %s to write %s", lang, tarPath) })
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(tarPath); err == nil {
		say("root filesystem cached at %s", tarPath)
		return tarPath, nil
	}
	// A name of its own, so nothing else ever writes or renames it.
	f, err := os.CreateTemp(m.cfg.CacheDir, filepath.Base(tarPath)+".*.partial")
	if err != nil {
		return "", fmt.Errorf("root filesystem cache: %w", err)
	}
	tmp := f.Name()
	f.Close()
	if err := produce(ctx, tmp); err != nil {
		os.Remove(tmp)
		return "", err
	}
	if err := os.Rename(tmp, tarPath); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("root filesystem cache: %w", err)
	}
	return tarPath, nil
}

// lockFile takes an exclusive lock on path (created if needed), shared with other processes,
// waiting for it until ctx ends; waiting is called once if it has to wait. The lock is
// released by the returned function (or when the process ends).
func lockFile(ctx context.Context, path string, waiting func()) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for said := false; ; {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing the file releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !said && waiting != nil {
			waiting()
			said = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// debootstrap makes a minbase root filesystem and writes it as a tarball to dst.
func (m *Manager) debootstrap(ctx context.Context, r recipe, dst string, progress io.Writer, say func(string, ...any)) error {
	if os.Geteuid() != 0 {
		return errors.New("bootstrapping a base image needs root (debootstrap): run as root or with sudo")
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return errors.New("debootstrap is not installed: apt-get install debootstrap (make prereqs does it)")
	}
	if err := os.MkdirAll(m.cfg.CacheDir, 0o755); err != nil {
		return err
	}
	root, err := os.MkdirTemp(m.cfg.CacheDir, "rootfs-")
	if err != nil {
		return err
	}
	defer func() {
		// A debootstrap that was stopped half-way may leave proc, sys or dev mounted in
		// the target: never recurse into them.
		unmountUnder(root)
		os.RemoveAll(root)
	}()
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "--include="+strings.Join(r.packages, ","),
		m.cfg.Suite, root, m.cfg.DebianMirror)
	// On cancel, SIGTERM lets debootstrap run its exit traps (they unmount); kill after 30 s.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("debootstrap: %w", err)
	}
	var tail []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		tail = append(tail, line)
		if len(tail) > 30 {
			tail = tail[1:]
		}
		say("debootstrap | %s", strings.TrimSpace(line))
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("debootstrap %s failed: %w\n%s", r.lang, err, strings.Join(tail, "\n"))
	}
	// Package caches are not needed in the image.
	os.RemoveAll(filepath.Join(root, "var", "cache", "apt", "archives"))
	os.MkdirAll(filepath.Join(root, "var", "cache", "apt", "archives", "partial"), 0o755)
	say("packing the root filesystem")
	tarCmd := exec.CommandContext(ctx, "tar", "--numeric-owner", "-C", root, "-cf", dst, ".")
	if b, err := tarCmd.CombinedOutput(); err != nil {
		return fmt.Errorf("tar root filesystem: %w: %s", err, b)
	}
	return nil
}

// copyEmbedded copies runtimes.FS's folder sub into dir/sub.
func copyEmbedded(sub, dir string) error {
	return fs.WalkDir(runtimes.FS, sub, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := runtimes.FS.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

// Hash is the spec hash of a request and the base image it builds on.
func (m *Manager) Hash(ctx context.Context, req Request) (string, string, error) {
	baseRef, id, err := m.base(ctx, req)
	if err != nil {
		return "", "", err
	}
	return specHash(id, req, m.cfg.RecipeVersion), baseRef, nil
}

// specHash = sha256(base image ID, sorted dependencies, sorted system packages, api-library
// flag, recipe version). Index URLs and the script are not part of it.
func specHash(baseID string, req Request, version string) string {
	deps := append([]string(nil), req.Dependencies...)
	sys := append([]string(nil), req.SystemPackages...)
	sort.Strings(deps)
	sort.Strings(sys)
	h := sha256.New()
	for _, part := range []string{"base", baseID, "lang", req.Language, "deps", strings.Join(deps, "\n"),
		"sys", strings.Join(sys, "\n"), "api", fmt.Sprint(req.InstallAPILibrary), "version", version} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// base resolves the image a request builds on, and its ID.
func (m *Manager) base(ctx context.Context, req Request) (string, string, error) {
	ref := req.BaseImage
	if ref == "" {
		var err error
		if ref, err = BaseRef(req.Language); err != nil {
			return "", "", err
		}
	}
	m.mu.Lock()
	c, ok := m.baseIDs[ref]
	m.mu.Unlock()
	if ok && time.Since(c.seen) < baseIDTTL {
		return ref, c.id, nil
	}
	img, err := m.rt.InspectImage(ctx, ref)
	if errors.Is(err, runtime.ErrNotFound) {
		if req.BaseImage == "" {
			return "", "", &MissingBaseError{Language: req.Language, Ref: ref}
		}
		return "", "", fmt.Errorf("image %s is not on this engine (berth never pulls: build or load it first)", ref)
	}
	if err != nil {
		return "", "", err
	}
	m.mu.Lock()
	m.baseIDs[ref] = baseID{img.ID, time.Now()}
	m.mu.Unlock()
	return ref, img.ID, nil
}

// Ensure returns the image a request runs in, building it once if it does not exist. The
// fast path is one inspect by tag. Concurrent calls for one hash wait on a single build.
func (m *Manager) Ensure(ctx context.Context, req Request, progress io.Writer) (Result, error) {
	t0 := time.Now()
	if progress == nil {
		progress = io.Discard
	}
	baseRef, id, err := m.base(ctx, req)
	if err != nil {
		return Result{}, err
	}
	if len(req.Dependencies) == 0 && len(req.SystemPackages) == 0 && !req.InstallAPILibrary {
		m.nHits.Add(1)
		m.records.Used(ctx, baseRef, runtime.Image{ID: id})
		return Result{Ref: baseRef, ImageID: id, CacheHit: true, Duration: time.Since(t0)}, nil
	}
	hash := specHash(id, req, m.cfg.RecipeVersion)
	tag := "berth/gen:" + hash[:16]
	// An image the collector evicted is not found here, and is built again below.
	if img, err := m.rt.InspectImage(ctx, tag); err == nil {
		m.nHits.Add(1)
		m.records.Used(ctx, tag, img)
		return Result{Ref: tag, ImageID: img.ID, Hash: hash, CacheHit: true, Duration: time.Since(t0)}, nil
	} else if !errors.Is(err, runtime.ErrNotFound) {
		return Result{}, err
	}
	// The build belongs to every caller waiting on it, not to the first: it runs on a context
	// that the first caller's cancel does not end, and each caller stops waiting on its own
	// ctx. Output goes to the first caller's writer until that caller leaves.
	pw := &detachable{w: progress}
	defer pw.detach()
	ch := m.builds.DoChan(hash, func() (any, error) {
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), buildTimeout)
		defer cancel()
		// Another process may have built it meanwhile.
		if img, err := m.rt.InspectImage(bctx, tag); err == nil {
			return img, nil
		}
		img, err := m.build(bctx, req, baseRef, hash, tag, pw)
		if err == nil {
			m.records.Built(bctx, tag, img) // once per build, however many callers wait
		}
		return img, err
	})
	var res singleflight.Result
	select {
	case <-ctx.Done():
		return Result{}, fmt.Errorf("wait for image %s: %w", tag, ctx.Err())
	case res = <-ch:
	}
	if res.Err != nil {
		return Result{}, res.Err
	}
	img := res.Val.(runtime.Image)
	m.records.Used(ctx, tag, img)
	logPath, _ := m.BuildLog(hash)
	return Result{Ref: tag, ImageID: img.ID, Hash: hash, CacheHit: false, BuildLog: logPath, Duration: time.Since(t0)}, nil
}

func (m *Manager) build(ctx context.Context, req Request, baseRef, hash, tag string, progress io.Writer) (runtime.Image, error) {
	b, err := m.builder()
	if err != nil {
		return runtime.Image{}, err
	}
	df, err := dockerfile(req, baseRef)
	if err != nil {
		return runtime.Image{}, err
	}
	dir, err := os.MkdirTemp("", "berth-gen-")
	if err != nil {
		return runtime.Image{}, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		return runtime.Image{}, err
	}
	if req.InstallAPILibrary {
		for _, sub := range []string{"python", "r"} {
			if err := copyEmbedded(sub, dir); err != nil {
				return runtime.Image{}, err
			}
		}
	}
	if err := os.MkdirAll(m.cfg.LogDir, 0o755); err != nil {
		return runtime.Image{}, err
	}
	logFile, err := os.Create(filepath.Join(m.cfg.LogDir, hash+".log"))
	if err != nil {
		return runtime.Image{}, err
	}
	defer logFile.Close()
	out := io.MultiWriter(progress, logFile)
	fmt.Fprintf(out, "building %s from %s (spec hash %s)\n", tag, baseRef, hash[:16])
	labels := map[string]string{}
	for k, v := range m.cfg.ExtraLabels {
		labels[k] = v
	}
	labels[runtime.LabelKind] = runtime.KindGenerated
	labels[runtime.LabelSpecHash] = hash
	args := map[string]string{}
	if len(req.Dependencies) > 0 && req.Language == "python" {
		args["PIP_INDEX_URL"] = m.cfg.PipIndexURL
	}
	if len(req.Dependencies) > 0 && req.Language == "r" {
		args["CRAN_URL"] = m.cfg.CRANURL
	}
	t0 := time.Now()
	img, err := b.BuildImage(ctx, runtime.BuildSpec{
		ContextDir: dir, Tags: []string{tag}, Labels: labels, BuildArgs: args, Network: m.cfg.BuildNetwork,
	}, out)
	if err != nil {
		m.nFailures.Add(1)
		fmt.Fprintf(logFile, "FAILED after %s: %v\n", time.Since(t0).Round(time.Millisecond), err)
		m.log.Warn("image build failed", "image", tag, "err", err)
		// An installer that could not install a requested package is the request's fault,
		// and its own line says why better than the engine's summary does.
		var be *runtime.BuildError
		if errors.As(err, &be) {
			if ie := installFailure(req, be.Log); ie != nil {
				ie.Hash, ie.BuildLog, ie.Err = hash, logFile.Name(), err
				return runtime.Image{}, ie
			}
		}
		return runtime.Image{}, fmt.Errorf("build %s (log: %s): %w", tag, logFile.Name(), err)
	}
	m.nBuilds.Add(1)
	fmt.Fprintf(out, "built %s in %s\n", tag, time.Since(t0).Round(time.Millisecond))
	m.log.Debug("image built", "image", tag, "duration", time.Since(t0))
	return img, nil
}

// dockerfile is the generated image's recipe: system packages first, then the helper library
// (custom images), then language packages.
func dockerfile(req Request, baseRef string) (string, error) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "FROM %s\nUSER root\n", baseRef)
	quote := func(field string, items []string) (string, error) {
		var q []string
		for _, it := range items {
			if strings.ContainsAny(it, "'\n\r\\`$\"") || strings.TrimSpace(it) == "" || strings.HasPrefix(it, "-") {
				return "", fmt.Errorf("%s: %q cannot be installed safely", field, it)
			}
			q = append(q, "'"+it+"'")
		}
		return strings.Join(q, " "), nil
	}
	if len(req.SystemPackages) > 0 {
		pk, err := quote("system_packages", sorted(req.SystemPackages))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&sb, "RUN apt-get update \\\n && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends %s \\\n && rm -rf /var/lib/apt/lists/*\n", pk)
	}
	if req.InstallAPILibrary {
		switch req.Language {
		case "python":
			sb.WriteString("COPY python/berth /opt/berth/lib/python/berth\nENV PYTHONPATH=/opt/berth/lib/python\n")
		case "r":
			sb.WriteString("COPY r/berth /tmp/berth-r\nRUN R CMD INSTALL --no-docs --no-html /tmp/berth-r && rm -rf /tmp/berth-r\n")
		}
	}
	if len(req.Dependencies) > 0 {
		deps, err := quote("dependencies", sorted(req.Dependencies))
		if err != nil {
			return "", err
		}
		switch req.Language {
		case "python":
			fmt.Fprintf(&sb, "ARG PIP_INDEX_URL\nRUN if [ -x /opt/berth/venv/bin/pip ]; then PIP=/opt/berth/venv/bin/pip; else PIP=\"python3 -m pip\"; export PIP_BREAK_SYSTEM_PACKAGES=1; fi; \\\n"+
				" $PIP install --no-cache-dir --disable-pip-version-check --no-input --index-url \"$PIP_INDEX_URL\" %s\n", deps)
		case "r":
			var names []string
			for _, d := range sorted(req.Dependencies) {
				names = append(names, `"`+d+`"`)
			}
			fmt.Fprintf(&sb, "ARG CRAN_URL\nRUN Rscript -e 'pk <- c(%s); install.packages(pk, repos = Sys.getenv(\"CRAN_URL\")); "+
				"miss <- pk[!sapply(pk, requireNamespace, quietly = TRUE)]; "+
				"if (length(miss)) { message(\"failed to install: \", paste(miss, collapse = \", \")); quit(status = 1) }'\n", strings.Join(names, ", "))
		default:
			return "", fmt.Errorf("dependencies: a %s block has no language packages", req.Language)
		}
	}
	sb.WriteString("USER 1000:1000\n")
	return sb.String(), nil
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// buildTimeout bounds a generated image's build, which outlives a caller that gives up.
const buildTimeout = time.Hour

// detachable forwards writes to w until detach; later writes are dropped.
type detachable struct {
	mu sync.Mutex
	w  io.Writer
}

func (d *detachable) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.w != nil {
		d.w.Write(p)
	}
	return len(p), nil
}

func (d *detachable) detach() {
	d.mu.Lock()
	d.w = nil
	d.mu.Unlock()
}

// prefixWriter prefixes every line written through it.
func prefixWriter(w io.Writer, prefix string) io.Writer {
	return &prefixed{w: w, prefix: prefix, bol: true}
}

type prefixed struct {
	w      io.Writer
	prefix string
	bol    bool
}

func (p *prefixed) Write(b []byte) (int, error) {
	var sb strings.Builder
	for _, c := range string(b) {
		if p.bol {
			sb.WriteString(p.prefix)
			p.bol = false
		}
		sb.WriteRune(c)
		if c == '\n' {
			p.bol = true
		}
	}
	if _, err := io.WriteString(p.w, sb.String()); err != nil {
		return 0, err
	}
	return len(b), nil
}
