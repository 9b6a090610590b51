// Package pkgindex serves Python and R packages from memory: a PEP 503 "simple" index and a
// CRAN-style repository. It is how berth installs language packages on machines that cannot
// reach PyPI or CRAN (air-gapped), and how the tests install packages they built themselves.
package pkgindex

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// fixedTime makes archives byte-identical for the same content.
var fixedTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

type file struct {
	name   string
	data   []byte
	sha256 string
	md5    string // CRAN's PACKAGES lists it
}

// Index holds packages. Safe for concurrent use.
type Index struct {
	mu      sync.RWMutex
	wheels  map[string][]file // normalized project name → wheels
	rpkgs   map[string]rpkg   // file name → package
	byFile  map[string]file
	rByName map[string]string // R package name → file name (latest added)
}

type rpkg struct {
	name, version, description string
	file                       file
}

// NewIndex makes an empty index.
func NewIndex() *Index {
	return &Index{wheels: map[string][]file{}, rpkgs: map[string]rpkg{}, byFile: map[string]file{}, rByName: map[string]string{}}
}

var (
	reNormalize = regexp.MustCompile(`[-_.]+`)
	reProject   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)
	reVersion   = regexp.MustCompile(`^[0-9][A-Za-z0-9.+!-]*$`)
	reRName     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9.]*[A-Za-z0-9]$`)
)

// Normalize is PEP 503's name normalization.
func Normalize(name string) string { return strings.ToLower(reNormalize.ReplaceAllString(name, "-")) }

// AddWheel builds a pure-Python wheel (py3-none-any) of the given files and adds it.
func (ix *Index) AddWheel(name, version string, files map[string][]byte) error {
	if !reProject.MatchString(name) || !reVersion.MatchString(version) {
		return fmt.Errorf("add wheel %s %s: bad name or version", name, version)
	}
	dist := strings.ReplaceAll(reNormalize.ReplaceAllString(name, "_"), "-", "_")
	info := dist + "-" + version + ".dist-info/"
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	var record []string
	write := func(p string, data []byte) error {
		h := &zip.FileHeader{Name: p, Method: zip.Deflate, Modified: fixedTime}
		h.SetMode(0o644)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		record = append(record, fmt.Sprintf("%s,sha256=%s,%d", p, base64.RawURLEncoding.EncodeToString(sum[:]), len(data)))
		return nil
	}
	names := make([]string, 0, len(files))
	for p := range files {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		if strings.HasPrefix(p, "/") || strings.Contains(p, "..") {
			return fmt.Errorf("add wheel %s: bad file name %q", name, p)
		}
		if err := write(filepath.ToSlash(p), files[p]); err != nil {
			return err
		}
	}
	meta := fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: %s, served by berth\n", name, version, name)
	wheel := "Wheel-Version: 1.0\nGenerator: berth\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
	if err := write(info+"METADATA", []byte(meta)); err != nil {
		return err
	}
	if err := write(info+"WHEEL", []byte(wheel)); err != nil {
		return err
	}
	record = append(record, info+"RECORD,,")
	h := &zip.FileHeader{Name: info + "RECORD", Method: zip.Deflate, Modified: fixedTime}
	h.SetMode(0o644)
	w, err := zw.CreateHeader(h)
	if err != nil {
		return err
	}
	w.Write([]byte(strings.Join(record, "\n") + "\n"))
	if err := zw.Close(); err != nil {
		return err
	}
	f := newFile(dist+"-"+version+"-py3-none-any.whl", buf.Bytes())
	ix.mu.Lock()
	defer ix.mu.Unlock()
	n := Normalize(name)
	ix.wheels[n] = append(ix.wheels[n], f)
	ix.byFile[f.name] = f
	return nil
}

// AddRPackage builds an R source package <name>_<version>.tar.gz of the given files
// (DESCRIPTION, NAMESPACE, R/*.R, relative to the package root) and adds it.
func (ix *Index) AddRPackage(name, version string, files map[string][]byte) error {
	if !reRName.MatchString(name) || !reVersion.MatchString(version) {
		return fmt.Errorf("add R package %s %s: bad name or version", name, version)
	}
	desc, ok := files["DESCRIPTION"]
	if !ok {
		return fmt.Errorf("add R package %s: no DESCRIPTION", name)
	}
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	gz.ModTime = fixedTime
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for p := range files {
		names = append(names, p)
	}
	sort.Strings(names)
	dirs := map[string]bool{}
	for _, p := range names {
		if strings.HasPrefix(p, "/") || strings.Contains(p, "..") {
			return fmt.Errorf("add R package %s: bad file name %q", name, p)
		}
		for d := filepath.Dir(p); d != "."; d = filepath.Dir(d) {
			if !dirs[d] {
				dirs[d] = true
				tw.WriteHeader(&tar.Header{Name: name + "/" + d + "/", Mode: 0o755, Typeflag: tar.TypeDir, ModTime: fixedTime})
			}
		}
		data := files[p]
		if err := tw.WriteHeader(&tar.Header{Name: name + "/" + filepath.ToSlash(p), Mode: 0o644, Size: int64(len(data)), ModTime: fixedTime, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		tw.Write(data)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	f := newFile(name+"_"+version+".tar.gz", buf.Bytes())
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.rpkgs[f.name] = rpkg{name: name, version: version, description: string(desc), file: f}
	ix.rByName[name] = f.name
	return nil
}

func newFile(name string, data []byte) file {
	sum := sha256.Sum256(data)
	m := md5.Sum(data)
	return file{name: name, data: data, sha256: hex.EncodeToString(sum[:]), md5: hex.EncodeToString(m[:])}
}

// LoadDir adds dir/python/<name>-<version>/** as wheels and dir/r/<name>_<version>/** as R
// source packages.
func LoadDir(dir string) (*Index, error) {
	ix := NewIndex()
	found := 0
	for _, kind := range []string{"python", "r"} {
		entries, err := os.ReadDir(filepath.Join(dir, kind))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			sep := "-"
			if kind == "r" {
				sep = "_"
			}
			i := strings.LastIndex(e.Name(), sep)
			if i <= 0 {
				return nil, fmt.Errorf("%s/%s: name the folder <name>%s<version>", kind, e.Name(), sep)
			}
			name, version := e.Name()[:i], e.Name()[i+1:]
			root := filepath.Join(dir, kind, e.Name())
			files := map[string][]byte{}
			err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					if d != nil && d.IsDir() && (d.Name() == "__pycache__") {
						return filepath.SkipDir
					}
					return err
				}
				rel, _ := filepath.Rel(root, p)
				b, err := os.ReadFile(p)
				files[filepath.ToSlash(rel)] = b
				return err
			})
			if err != nil {
				return nil, err
			}
			if kind == "python" {
				err = ix.AddWheel(name, version, files)
			} else {
				err = ix.AddRPackage(name, version, files)
			}
			if err != nil {
				return nil, err
			}
			found++
		}
	}
	if found == 0 {
		return nil, fmt.Errorf("no packages under %s (want python/<name>-<version>/ or r/<name>_<version>/)", dir)
	}
	return ix, nil
}

// Handler serves /simple/ (PEP 503), /files/<file>, and /cran/src/contrib/{PACKAGES,PACKAGES.gz,<file>}.
func (ix *Index) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /simple/{$}", func(w http.ResponseWriter, r *http.Request) {
		ix.mu.RLock()
		defer ix.mu.RUnlock()
		names := make([]string, 0, len(ix.wheels))
		for n := range ix.wheels {
			names = append(names, n)
		}
		sort.Strings(names)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!DOCTYPE html>\n<html><body>\n")
		for _, n := range names {
			fmt.Fprintf(w, "<a href=\"%s/\">%s</a>\n", html.EscapeString(n), html.EscapeString(n))
		}
		fmt.Fprint(w, "</body></html>\n")
	})
	mux.HandleFunc("GET /simple/{project}/{$}", func(w http.ResponseWriter, r *http.Request) {
		n := Normalize(r.PathValue("project"))
		if n != r.PathValue("project") {
			http.Redirect(w, r, "/simple/"+n+"/", http.StatusMovedPermanently)
			return
		}
		ix.mu.RLock()
		defer ix.mu.RUnlock()
		fs, ok := ix.wheels[n]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!DOCTYPE html>\n<html><body>\n")
		for _, f := range fs {
			fmt.Fprintf(w, "<a href=\"../../files/%s#sha256=%s\">%s</a>\n", html.EscapeString(f.name), f.sha256, html.EscapeString(f.name))
		}
		fmt.Fprint(w, "</body></html>\n")
	})
	serveFile := func(w http.ResponseWriter, r *http.Request, name string) {
		ix.mu.RLock()
		f, ok := ix.byFile[name]
		if !ok {
			if p, ok2 := ix.rpkgs[name]; ok2 {
				f, ok = p.file, true
			}
		}
		ix.mu.RUnlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, f.name, fixedTime, bytes.NewReader(f.data))
	}
	mux.HandleFunc("GET /files/{file}", func(w http.ResponseWriter, r *http.Request) { serveFile(w, r, r.PathValue("file")) })
	mux.HandleFunc("GET /cran/src/contrib/{file}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		switch name {
		case "PACKAGES", "PACKAGES.gz", "PACKAGES.rds":
			if name == "PACKAGES.rds" {
				http.NotFound(w, r)
				return
			}
			body := ix.packagesFile()
			if name == "PACKAGES.gz" {
				var buf bytes.Buffer
				gz := gzip.NewWriter(&buf)
				gz.Write(body)
				gz.Close()
				body = buf.Bytes()
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(body)
		default:
			serveFile(w, r, name)
		}
	})
	return mux
}

// packagesFile is the CRAN PACKAGES index: one stanza per package from its DESCRIPTION.
func (ix *Index) packagesFile() []byte {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	names := make([]string, 0, len(ix.rByName))
	for n := range ix.rByName {
		names = append(names, n)
	}
	sort.Strings(names)
	var sb strings.Builder
	for _, n := range names {
		p := ix.rpkgs[ix.rByName[n]]
		fields := descFields(p.description)
		fmt.Fprintf(&sb, "Package: %s\nVersion: %s\n", p.name, p.version)
		for _, k := range []string{"Depends", "Imports", "LinkingTo", "Suggests", "License"} {
			if v, ok := fields[k]; ok {
				fmt.Fprintf(&sb, "%s: %s\n", k, v)
			}
		}
		fmt.Fprintf(&sb, "NeedsCompilation: no\nMD5sum: %s\n\n", p.file.md5)
	}
	return []byte(sb.String())
}

// descFields parses a DESCRIPTION file (DCF: continuation lines start with whitespace).
func descFields(desc string) map[string]string {
	out := map[string]string{}
	var key string
	for _, line := range strings.Split(desc, "\n") {
		if line == "" {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && key != "" {
			out[key] += " " + strings.TrimSpace(line)
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key = strings.TrimSpace(k)
		out[key] = strings.TrimSpace(v)
	}
	return out
}

// Serve serves the index on listen until ctx ends or stop is called. url has no trailing slash.
func Serve(ctx context.Context, listen string, ix *Index) (string, func(), error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return "", nil, fmt.Errorf("serve package index: %w", err)
	}
	srv := &http.Server{Handler: ix.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	var once sync.Once
	stop := func() { once.Do(func() { srv.Close() }) }
	go func() {
		<-ctx.Done()
		stop()
	}()
	return "http://" + ln.Addr().String(), stop, nil
}
