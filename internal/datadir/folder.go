package datadir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Limits cap what berth reads back from a job's folder. A zero field takes its default.
type Limits struct {
	// MaxStateBytes caps out/state.json (default 1 MiB).
	MaxStateBytes int64
	// MaxManifestBytes caps each manifest in out/tables and out/files (default 1 MiB).
	MaxManifestBytes int64
	// MaxOutputFiles caps how many files and folders a job may leave in /data/out
	// (default 10,000).
	MaxOutputFiles int
}

// DefaultLimits returns the defaults documented on Limits.
func DefaultLimits() Limits {
	return Limits{MaxStateBytes: 1 << 20, MaxManifestBytes: 1 << 20, MaxOutputFiles: 10_000}
}

// orDefaults fills the zero fields from DefaultLimits.
func (l Limits) orDefaults() Limits {
	d := DefaultLimits()
	if l.MaxStateBytes <= 0 {
		l.MaxStateBytes = d.MaxStateBytes
	}
	if l.MaxManifestBytes <= 0 {
		l.MaxManifestBytes = d.MaxManifestBytes
	}
	if l.MaxOutputFiles <= 0 {
		l.MaxOutputFiles = d.MaxOutputFiles
	}
	return l
}

// Folder is a job's folder opened for reading back what its containers wrote. Every path is
// resolved below it one name at a time with os.Root, and nothing is followed: each folder on
// the way must be a real folder, and a file read must be a regular file with a single name.
// A symbolic link, a device, a FIFO, a socket or a hard link is an *Error naming the path, and
// nothing is read through it.
type Folder struct {
	root *os.Root
	name string // how the folder is named in errors ("" for /data itself, "out" for /data/out)
}

// OpenFolder opens dir, which berth made; name is how paths below it are named in errors,
// relative to /data ("" when dir is the /data folder itself).
func OpenFolder(dir, name string) (*Folder, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open job folder: %w", err)
	}
	return &Folder{root: r, name: name}, nil
}

// Close releases the folder; files opened from it stay open.
func (f *Folder) Close() error { return f.root.Close() }

// display names rel as the container saw it, relative to /data.
func (f *Folder) display(rel string) string { return path.Join(f.name, rel) }

// names splits a slash-separated path relative to the folder; "..", an absolute path and
// empty names are refused.
func (f *Folder) names(rel string) ([]string, error) {
	if rel == "" || rel == "." {
		return nil, nil
	}
	if path.IsAbs(rel) || filepath.IsAbs(rel) {
		return nil, &Error{File: rel, Message: "an absolute path; only paths below the job's folder are read"}
	}
	parts := strings.Split(rel, "/")
	for _, p := range parts {
		if p == "" || p == "." || p == ".." || strings.ContainsRune(p, filepath.Separator) {
			return nil, &Error{File: f.display(rel), Message: "not a plain path below the job's folder"}
		}
	}
	return parts, nil
}

// check refuses anything but a real folder or a regular file with a single name.
func (f *Folder) check(fi fs.FileInfo, rel string) error {
	m := fi.Mode()
	switch {
	case m&fs.ModeSymlink != 0:
		return &Error{File: f.display(rel), Message: "a symbolic link: links in a job's folder are never followed; write a regular file"}
	case m.IsDir():
		return nil
	case m&fs.ModeNamedPipe != 0:
		return &Error{File: f.display(rel), Message: "a FIFO, not a regular file"}
	case m&fs.ModeSocket != 0:
		return &Error{File: f.display(rel), Message: "a socket, not a regular file"}
	case m&fs.ModeDevice != 0:
		return &Error{File: f.display(rel), Message: "a device, not a regular file"}
	case !m.IsRegular():
		return &Error{File: f.display(rel), Message: "not a regular file"}
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
		return &Error{File: f.display(rel), Message: fmt.Sprintf("a hard link (one file with %d names): write a regular file with a single name", st.Nlink)}
	}
	return nil
}

// lstat is one name in dir, checked, without following it.
func (f *Folder) lstat(dir *os.Root, name, rel string) (fs.FileInfo, error) {
	fi, err := dir.Lstat(name)
	if err != nil {
		return nil, err
	}
	if err := f.check(fi, rel); err != nil {
		return nil, err
	}
	return fi, nil
}

// sub opens the folder name in dir, which must be a real folder, and the one lstat saw.
func (f *Folder) sub(dir *os.Root, name, rel string) (*os.Root, error) {
	fi, err := f.lstat(dir, name, rel)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, &Error{File: f.display(rel), Message: "not a folder"}
	}
	return f.openSub(dir, name, rel, fi)
}

func (f *Folder) openSub(dir *os.Root, name, rel string, fi fs.FileInfo) (*os.Root, error) {
	d, err := dir.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	if dfi, err := d.Stat("."); err != nil || !os.SameFile(fi, dfi) {
		d.Close()
		return nil, &Error{File: f.display(rel), Message: "changed while berth read it"}
	}
	return d, nil
}

// parent opens the folder holding rel and returns it with rel's last name. The returned
// close func releases it.
func (f *Folder) parent(rel string) (*os.Root, string, func(), error) {
	parts, err := f.names(rel)
	if err != nil {
		return nil, "", nil, err
	}
	if len(parts) == 0 {
		return nil, "", nil, &Error{File: f.display(rel), Message: "not a file"}
	}
	dir, closeDir, err := f.dir(parts[:len(parts)-1])
	if err != nil {
		return nil, "", nil, err
	}
	return dir, parts[len(parts)-1], closeDir, nil
}

// dir opens the folder at parts, checking each step.
func (f *Folder) dir(parts []string) (*os.Root, func(), error) {
	cur := f.root
	closeCur := func() {}
	for i, p := range parts {
		next, err := f.sub(cur, p, strings.Join(parts[:i+1], "/"))
		closeCur()
		if err != nil {
			return nil, nil, err
		}
		cur = next
		closeCur = func() { next.Close() }
	}
	return cur, closeCur, nil
}

// Lstat returns rel's information when it is a real folder or a regular file with a single
// name; a missing rel is an error satisfying errors.Is(err, fs.ErrNotExist).
func (f *Folder) Lstat(rel string) (fs.FileInfo, error) {
	dir, name, done, err := f.parent(rel)
	if err != nil {
		return nil, err
	}
	defer done()
	return f.lstat(dir, name, rel)
}

// Open opens the regular file rel for reading.
func (f *Folder) Open(rel string) (*os.File, error) {
	dir, name, done, err := f.parent(rel)
	if err != nil {
		return nil, err
	}
	defer done()
	return f.open(dir, name, rel)
}

func (f *Folder) open(dir *os.Root, name, rel string) (*os.File, error) {
	fi, err := f.lstat(dir, name, rel)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, &Error{File: f.display(rel), Message: "a folder, not a file"}
	}
	// O_NONBLOCK: should a FIFO take the file's place after the check, opening it does not
	// wait for a writer; the identity check below then refuses it.
	fh, err := dir.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	ffi, err := fh.Stat()
	if err == nil && !os.SameFile(fi, ffi) {
		err = &Error{File: f.display(rel), Message: "changed while berth read it"}
	}
	if err == nil {
		err = f.check(ffi, rel)
	}
	if err != nil {
		fh.Close()
		return nil, err
	}
	return fh, nil
}

// ReadFile reads the regular file rel, refusing one larger than max bytes; what names the
// cap in the error ("the cap on state.json").
func (f *Folder) ReadFile(rel string, max int64, what string) ([]byte, error) {
	fh, err := f.Open(rel)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	tooBig := func(n int64) error {
		return &Error{File: f.display(rel), Message: fmt.Sprintf("%d bytes, more than %s allows (%s)", n, what, HumanBytes(max))}
	}
	if fi, err := fh.Stat(); err == nil && fi.Size() > max {
		return nil, tooBig(fi.Size())
	}
	b, err := io.ReadAll(io.LimitReader(fh, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, tooBig(int64(len(b)))
	}
	return b, nil
}

// ReadDir lists the real folder rel, sorted by name.
func (f *Folder) ReadDir(rel string) ([]fs.DirEntry, error) {
	parts, err := f.names(rel)
	if err != nil {
		return nil, err
	}
	dir, done, err := f.dir(parts)
	if err != nil {
		return nil, err
	}
	defer done()
	return readDir(dir)
}

func readDir(dir *os.Root) ([]fs.DirEntry, error) {
	fh, err := dir.Open(".")
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	es, err := fh.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	sort.Slice(es, func(i, j int) bool { return es[i].Name() < es[j].Name() })
	return es, nil
}

// Replace writes data to rel as a new regular file, removing whatever had the name: a link
// there is removed, never written through.
func (f *Folder) Replace(rel string, data []byte) error {
	dir, name, done, err := f.parent(rel)
	if err != nil {
		return err
	}
	defer done()
	if err := dir.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace %s: %w", f.display(rel), err)
	}
	fh, err := dir.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("replace %s: %w", f.display(rel), err)
	}
	if _, err := fh.Write(data); err != nil {
		fh.Close()
		return fmt.Errorf("replace %s: %w", f.display(rel), err)
	}
	return fh.Close()
}

// Walk visits everything below the folder rel, depth first in name order (a folder before
// what it holds), checking that every entry is a real folder or a regular file with a single
// name and that there are at most max entries (0: no cap). fn gets each entry's path and the
// folder holding it, to open a file by name with OpenIn. A missing rel is an error satisfying
// errors.Is(err, fs.ErrNotExist).
func (f *Folder) Walk(rel string, max int, fn func(rel string, fi fs.FileInfo, dir *os.Root) error) error {
	parts, err := f.names(rel)
	if err != nil {
		return err
	}
	dir, done, err := f.dir(parts)
	if err != nil {
		return err
	}
	defer done()
	n := 0
	var walk func(dir *os.Root, rel string) error
	walk = func(dir *os.Root, rel string) error {
		es, err := readDir(dir)
		if err != nil {
			return err
		}
		for _, e := range es {
			n++
			if max > 0 && n > max {
				return &Error{File: f.display(strings.Join(parts, "/")) + "/",
					Message: fmt.Sprintf("more than %d files and folders (the cap on a job's output files is %d)", max, max)}
			}
			p := path.Join(rel, e.Name())
			fi, err := f.lstat(dir, e.Name(), p)
			if err != nil {
				return err
			}
			if fn != nil {
				if err := fn(p, fi, dir); err != nil {
					return err
				}
			}
			if fi.IsDir() {
				sub, err := f.openSub(dir, e.Name(), p, fi)
				if err != nil {
					return err
				}
				err = walk(sub, p)
				sub.Close()
				if err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(dir, strings.Join(parts, "/"))
}

// OpenIn opens the regular file name in dir (a folder Walk gave), checked like Open.
func (f *Folder) OpenIn(dir *os.Root, name, rel string) (*os.File, error) {
	return f.open(dir, name, rel)
}

// Check verifies that everything below rel in dir is a real folder or a regular file with a
// single name, at most lim.MaxOutputFiles of them. A missing rel is fine.
func Check(dir, rel string, lim Limits) error {
	f, err := OpenFolder(dir, "")
	if err != nil {
		return err
	}
	defer f.Close()
	err = f.Walk(rel, lim.orDefaults().MaxOutputFiles, nil)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// CopyTree copies the job folder src (named name in errors, e.g. "out") into dst, which is
// created, checking everything as Walk does; it returns how many files it copied.
func CopyTree(src, name, dst string, lim Limits) (int, error) {
	f, err := OpenFolder(src, name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	// Check everything before copying anything.
	max := lim.orDefaults().MaxOutputFiles
	if err := f.Walk("", max, nil); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return 0, err
	}
	n := 0
	err = f.Walk("", max, func(rel string, fi fs.FileInfo, dir *os.Root) error {
		target := filepath.Join(dst, filepath.FromSlash(rel))
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := f.OpenIn(dir, path.Base(rel), rel)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		n++
		return out.Close()
	})
	return n, err
}

// HumanBytes prints a byte count the way caps are stated ("1 MiB", "512 KiB", "100 B").
func HumanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d B", n)
	}
}
