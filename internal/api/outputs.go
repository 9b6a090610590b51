package api

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/berthproject/berth/internal/authz"
	"github.com/berthproject/berth/internal/datadir"
	"github.com/berthproject/berth/internal/job"
)

// maxOutputEntries caps how many files and folders one outputs answer walks (the same cap a
// job's kept outputs were checked against by default).
const maxOutputEntries = 10_000

// handleOutputs serves what a job kept of /data/out: a tar stream of the whole folder, or one
// regular file with ?path=rel. Everything is read below the job's folder without following
// links (datadir.Folder): a link, a device or a path leaving the folder is refused.
func (s *Server) handleOutputs(w http.ResponseWriter, r *http.Request) {
	j, ok := s.jobFor(w, r, authz.JobRead)
	if !ok {
		return
	}
	if j.OutputDir == "" {
		msg := fmt.Sprintf("job %s kept no outputs", j.ID)
		if !j.State.Terminal() {
			// The job exists and is the caller's to see: 409, so a 404 always means "no such job".
			writeError(w, http.StatusConflict, "conflict", fmt.Sprintf("job %s is %s: its outputs are kept once it ends", j.ID, j.State), "")
			return
		} else if j.Kind == job.KindComponent {
			msg += " (a component's outputs go to storage: see its tables and files)"
		} else {
			msg += " (nothing was written to /data/out, or the job failed before its outputs were read)"
		}
		writeError(w, http.StatusNotFound, "not_found", msg, "")
		return
	}
	f, err := datadir.OpenFolder(j.OutputDir, "out")
	if errors.Is(err, fs.ErrNotExist) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("job %s's outputs are gone (deleted)", j.ID), "")
		return
	}
	if err != nil {
		s.d.Log.Error("open job outputs", "job", j.ID, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "could not open the job's outputs", "")
		return
	}
	defer f.Close()

	if rel, ok := r.URL.Query()["path"]; ok {
		s.serveOutputFile(w, j, f, rel[0])
		return
	}
	// Check everything before the first byte: a refusal is then a clean JSON error.
	if err := f.Walk("", maxOutputEntries, nil); err != nil {
		s.outputError(w, j, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", j.ID+"-outputs.tar"))
	w.WriteHeader(http.StatusOK)
	tw := tar.NewWriter(w)
	err = f.Walk("", maxOutputEntries, func(rel string, fi fs.FileInfo, dir *os.Root) error {
		h := &tar.Header{Name: rel, ModTime: fi.ModTime(), Format: tar.FormatPAX}
		if fi.IsDir() {
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, rel+"/", 0o755
			return tw.WriteHeader(h)
		}
		in, err := f.OpenIn(dir, path.Base(rel), rel)
		if err != nil {
			return err
		}
		defer in.Close()
		st, err := in.Stat()
		if err != nil {
			return err
		}
		h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, st.Size()
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		// Exactly the size announced: a file growing meanwhile is cut, one shrinking fails.
		_, err = io.CopyN(tw, in, st.Size())
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		// The status is sent: a broken tar (no end blocks) is how the client learns of it.
		s.d.Log.Warn("stream job outputs", "job", j.ID, "err", err)
	}
}

func (s *Server) serveOutputFile(w http.ResponseWriter, j job.Job, f *datadir.Folder, rel string) {
	if msg := checkOutputPath(rel); msg != "" {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("path %q: %s", rel, msg), "path")
		return
	}
	fh, err := f.Open(rel)
	if err != nil {
		s.outputError(w, j, err)
		return
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		s.outputError(w, j, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
	w.WriteHeader(http.StatusOK)
	io.CopyN(w, fh, st.Size())
}

// checkOutputPath says what is wrong with a path below out/ ("" when nothing is).
func checkOutputPath(rel string) string {
	switch {
	case rel == "":
		return "empty: give a file's path relative to the job's out/ folder"
	case strings.HasPrefix(rel, "/"):
		return "absolute: give a path relative to the job's out/ folder"
	case strings.Contains(rel, "\\"), strings.ContainsRune(rel, 0):
		return "a path uses / between names and no backslash or NUL"
	}
	for _, part := range strings.Split(rel, "/") {
		if part == ".." {
			return "\"..\" is not allowed: the path must stay inside the job's out/ folder"
		}
	}
	if path.Clean(rel) != rel {
		return "not a clean path (no empty names, no \".\")"
	}
	return ""
}

func (s *Server) outputError(w http.ResponseWriter, j job.Job, err error) {
	var de *datadir.Error
	switch {
	case errors.Is(err, fs.ErrNotExist):
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("job %s kept no such output", j.ID), "path")
	case errors.As(err, &de):
		writeError(w, http.StatusUnprocessableEntity, "refused", de.Error(), "path")
	default:
		s.d.Log.Error("read job outputs", "job", j.ID, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "could not read the job's outputs", "")
	}
}
