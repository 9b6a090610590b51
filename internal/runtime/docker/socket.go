package docker

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/berthproject/berth/internal/runtime"
)

// wellKnownSockets are where a Docker Engine or its containerd listen on a Linux host; the
// socket of the engine's own connection is checked besides these.
var wellKnownSockets = []string{
	"/var/run/docker.sock",
	"/run/docker.sock",
	"/run/containerd/containerd.sock",
	"/run/containerd/containerd.sock.ttrpc",
	"/run/docker/containerd/containerd.sock",
	"/run/docker/containerd/containerd-debug.sock",
	"/var/run/docker/containerd/containerd.sock",
}

// socketWalkLimit bounds the search of a mounted folder for another hard link of a socket:
// a folder with more entries is refused while such a link exists anywhere.
const socketWalkLimit = 200_000

// fileID is a file's identity, whatever name it is reached by.
type fileID struct{ dev, ino uint64 }

func statID(p string) (fileID, *syscall.Stat_t, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		return fileID{}, nil, err
	}
	return fileID{uint64(st.Dev), uint64(st.Ino)}, &st, nil
}

// socketGuard holds the identities of the engine's sockets and of every folder above them.
type socketGuard struct {
	sockets  map[fileID]string // the socket's identity → its resolved path
	holders  map[fileID]string // a folder's identity → the socket it holds
	hardLink map[fileID]string // sockets with more than one name
}

// newSocketGuard stats the sockets as they are now (a restarted engine makes a new one).
func newSocketGuard(paths []string) *socketGuard {
	g := &socketGuard{sockets: map[fileID]string{}, holders: map[fileID]string{}, hardLink: map[fileID]string{}}
	for _, p := range paths {
		r, err := filepath.EvalSymlinks(p)
		if err != nil {
			continue // not on this host
		}
		id, st, err := statID(r)
		if err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
			continue
		}
		g.sockets[id] = r
		if st.Nlink > 1 {
			g.hardLink[id] = r
		}
		for dir := filepath.Dir(r); ; dir = filepath.Dir(dir) {
			if did, _, err := statID(dir); err == nil {
				if _, seen := g.holders[did]; !seen {
					g.holders[did] = r // the first socket named (the connection's) is the one said
				}
			}
			if dir == "/" || dir == "." {
				break
			}
		}
	}
	return g
}

// engineSockets are the socket paths to guard: the connection's, then the well-known ones.
func (e *Engine) engineSockets() []string {
	var out []string
	if h := e.cli.DaemonHost(); strings.HasPrefix(h, "unix://") {
		out = append(out, strings.TrimPrefix(h, "unix://"))
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		out = append(out, filepath.Join(d, "docker.sock"))
	}
	return append(out, wellKnownSockets...)
}

// checkMounts refuses a mount whose source, once resolved, is an engine socket, holds one
// (an ancestor folder of it, by whatever name: a symlink, /var/run vs /run, a bind-mount
// alias), has such a bind mount below it, or holds another hard link of a socket. Paths are
// compared by device and inode, never by their spelling.
func (e *Engine) checkMounts(mounts []runtime.Mount) error {
	if len(mounts) == 0 {
		return nil
	}
	g := newSocketGuard(e.engineSockets())
	if len(g.sockets) == 0 {
		return nil // a remote engine: its sockets are not on this host
	}
	var below []string // mount points on this host, read once
	belowRead := false
	for _, m := range mounts {
		refuse := func(why string) error {
			return fmt.Errorf("mount %s: %s; the engine's socket is never given to a task", m.Source, why)
		}
		src, err := filepath.EvalSymlinks(m.Source)
		if errors.Is(err, fs.ErrNotExist) {
			continue // the engine refuses a bind of an absent source
		}
		if err != nil {
			return refuse(fmt.Sprintf("cannot be checked against the engine's socket (%v)", err))
		}
		id, st, err := statID(src)
		if err != nil {
			return refuse(fmt.Sprintf("cannot be checked against the engine's socket (%v)", err))
		}
		if s, ok := g.sockets[id]; ok {
			return refuse("it is the engine's socket " + s)
		}
		if s, ok := g.holders[id]; ok {
			return refuse("it holds the engine's socket " + s)
		}
		if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
			continue
		}
		if !belowRead {
			below, belowRead = mountPoints(), true
		}
		for _, mp := range below {
			if !strings.HasPrefix(mp, strings.TrimSuffix(src, "/")+"/") {
				continue
			}
			mid, _, err := statID(mp)
			if err != nil {
				continue
			}
			if s, ok := g.sockets[mid]; ok {
				return refuse(fmt.Sprintf("%s below it is a bind mount of the engine's socket %s", mp, s))
			}
			if s, ok := g.holders[mid]; ok {
				return refuse(fmt.Sprintf("%s below it is a bind mount holding the engine's socket %s", mp, s))
			}
		}
		if len(g.hardLink) > 0 {
			if err := findHardLink(src, g.hardLink); err != nil {
				return refuse(err.Error())
			}
		}
	}
	return nil
}

// findHardLink walks dir for another name of a socket that has more than one.
func findHardLink(dir string, links map[fileID]string) error {
	n := 0
	errFound := errors.New("found")
	var found string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable: the task could not read it either
		}
		if n++; n > socketWalkLimit {
			return fmt.Errorf("the engine's socket has another name somewhere, and the folder has more than %d entries to search for it", socketWalkLimit)
		}
		if d.Type()&fs.ModeSocket == 0 {
			return nil
		}
		var st syscall.Stat_t
		if syscall.Lstat(p, &st) != nil {
			return nil
		}
		if s, ok := links[fileID{uint64(st.Dev), uint64(st.Ino)}]; ok {
			found = fmt.Sprintf("%s below it is a hard link of the engine's socket %s", p, s)
			return errFound
		}
		return nil
	})
	if errors.Is(err, errFound) {
		return errors.New(found)
	}
	return err
}

// mountPoints are this host's mount points (/proc/self/mountinfo), unescaped.
func mountPoints() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		out = append(out, unescapeMount(fields[4]))
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
