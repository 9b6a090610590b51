package job

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berthproject/berth/internal/runtime"
)

// diskWatchInterval is how often a running job's folder is measured. A job can write past
// its cap by what it writes in one interval, one measurement and the kill (its write speed ×
// a little more than this) before it is killed.
var diskWatchInterval = 100 * time.Millisecond

// diskUsage is the space the files below dir take on disk: allocated blocks (st_blocks×512,
// so a sparse file counts what it really holds), links never followed, a file with several
// hard links counted once. A folder that cannot be read is an error: what it holds could not
// be counted. Entries that vanish during the walk are skipped.
func diskUsage(dir string) (int64, error) {
	var total int64
	seen := map[[2]uint64]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != dir && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		fi, err := d.Info() // lstat: a link is measured as itself
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			total += fi.Size()
			return nil
		}
		if st.Nlink > 1 && !fi.IsDir() {
			key := [2]uint64{uint64(st.Dev), st.Ino}
			if seen[key] {
				return nil
			}
			seen[key] = true
		}
		total += st.Blocks * 512
		return nil
	})
	if err != nil {
		return total, fmt.Errorf("measure %s: %w", dir, err)
	}
	return total, nil
}

// diskWatch holds one container to a cap on what it writes below a folder: it measures the
// folder every interval and, the first time the growth since base passes the cap, calls kill
// (at once, from its own goroutine) and stops measuring. A folder it cannot measure is
// treated as past the cap, since its usage could not be bounded.
type diskWatch struct {
	dir   string
	base  int64
	limit int64
	stopc chan struct{}
	done  chan struct{}

	mu       sync.Mutex
	exceeded bool
	seen     int64 // bytes written since base when it was killed
	measErr  error
	ended    bool // passed the cap was found only after the container had ended
}

// startDiskWatch starts watching dir until stop is called. The wait between measurements is
// interval, or as long as the last measurement took when that was longer.
func startDiskWatch(dir string, base, limit int64, interval time.Duration, kill func()) *diskWatch {
	w := &diskWatch{dir: dir, base: base, limit: limit, stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTimer(interval)
		defer t.Stop()
		for {
			select {
			case <-w.stopc:
				return
			case <-t.C:
			}
			t0 := time.Now()
			used, err := diskUsage(w.dir)
			// A folder of many files takes long to walk: wait at least as long as the walk
			// took, so the watch costs at most half a core.
			t.Reset(max(interval, time.Since(t0)))
			if err != nil && errors.Is(err, fs.ErrNotExist) {
				continue // the job's folder is being taken down
			}
			if err == nil && used-w.base <= w.limit {
				continue
			}
			w.mu.Lock()
			w.exceeded, w.seen, w.measErr = true, used-w.base, err
			w.mu.Unlock()
			kill()
			return
		}
	}()
	return w
}

// stop ends the watch, once the container has ended, and reports whether the cap was
// passed. A container that wrote past the cap and ended between two measurements is caught
// by one last measurement here, so a fast writer cannot slip past the cap by finishing
// first. Safe on a nil watch.
func (w *diskWatch) stop() bool {
	if w == nil {
		return false
	}
	select {
	case <-w.stopc:
	default:
		close(w.stopc)
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.exceeded {
		used, err := diskUsage(w.dir)
		if (err != nil && !errors.Is(err, fs.ErrNotExist)) || (err == nil && used-w.base > w.limit) {
			w.exceeded, w.seen, w.measErr, w.ended = true, used-w.base, err, true
		}
	}
	return w.exceeded
}

// message says why the job was killed: the cap and the usage seen.
func (w *diskWatch) message() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	what := "the container was killed"
	if w.ended {
		what = "nothing it wrote is kept"
	}
	if w.measErr != nil {
		return fmt.Sprintf("berth could not measure what the job wrote to /data (%v), so its cap of %s (limits.disk) could not be held: %s",
			w.measErr, humanBytes(w.limit), what)
	}
	return fmt.Sprintf("wrote %s to /data, more than its cap of %s (limits.disk): %s",
		humanBytes(w.seen), humanBytes(w.limit), what)
}

// DiskLimitError is a container of the job killed for writing past the job's /data cap.
type DiskLimitError struct{ Message string }

func (e *DiskLimitError) Error() string { return e.Message }

// measureDiskBase records, once per job, what its folder holds before its first container
// starts: the cap counts what the job writes beyond that (inputs and code are not counted).
func (r *Run) measureDiskBase() {
	if r.diskBaseSet || r.workDir == "" {
		return
	}
	if n, err := diskUsage(r.workDir); err == nil {
		r.diskBase = n
	} else {
		r.m.log.Warn("measure job folder", "job", r.j.ID, "err", err)
	}
	r.diskBaseSet = true
}

// watchDisk holds container id to a /data cap of limit bytes (none when limit ≤ 0): past
// it, the container is killed with no grace.
func (r *Run) watchDisk(id runtime.TaskID, limit int64) *diskWatch {
	if limit <= 0 || r.workDir == "" {
		return nil
	}
	r.measureDiskBase()
	m := r.m
	return startDiskWatch(r.workDir, r.diskBase, limit, diskWatchInterval, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		m.log.Warn("job passed its /data cap; killing its container", "job", r.j.ID, "cap", limit)
		if err := m.rt.Stop(ctx, id, 0); err != nil {
			m.log.Error("kill job container past its /data cap", "job", r.j.ID, "err", err)
		}
	})
}

// DiskEnforcement is how the /data cap is held on the filesystem of a data dir.
type DiskEnforcement struct {
	// Filesystem and MountPoint are the filesystem holding the data dir.
	Filesystem, MountPoint string
	// ProjectQuota reports whether that filesystem is mounted with project quotas (xfs
	// prjquota/pquota, ext4 prjquota), the only kind of quota that can cap one folder.
	ProjectQuota bool
}

// String says plainly how the cap is held.
func (d DiskEnforcement) String() string {
	where := d.Filesystem + " at " + d.MountPoint
	if d.ProjectQuota {
		return fmt.Sprintf("%s has project quotas, which berth does not set yet: a watchdog measures each job's folder every %s and kills a job past its cap (it may write past it by what it writes in that time)",
			where, diskWatchInterval)
	}
	return fmt.Sprintf("%s has no project quotas, so no quota can cap a job's folder: a watchdog measures each job's folder every %s and kills a job past its cap (it may write past it by what it writes in that time)",
		where, diskWatchInterval)
}

// ProbeDiskEnforcement finds the filesystem holding dir and whether it has project quotas,
// from /proc/self/mountinfo.
func ProbeDiskEnforcement(dir string) (DiskEnforcement, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return DiskEnforcement{}, fmt.Errorf("probe disk quota of %s: %w", dir, err)
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return DiskEnforcement{}, fmt.Errorf("probe disk quota of %s: %w", dir, err)
	}
	defer f.Close()
	var best DiskEnforcement
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, after := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 6 || len(after) < 3 {
			continue
		}
		mp := unescapeMount(fields[4])
		if !(real == mp || mp == "/" || strings.HasPrefix(real, mp+"/")) || len(mp) < len(best.MountPoint) {
			continue
		}
		opts := "," + fields[5] + "," + after[2] + ","
		best = DiskEnforcement{Filesystem: after[0], MountPoint: mp,
			ProjectQuota: strings.Contains(opts, ",prjquota,") || strings.Contains(opts, ",pquota,")}
	}
	if err := sc.Err(); err != nil {
		return DiskEnforcement{}, fmt.Errorf("probe disk quota of %s: %w", dir, err)
	}
	if best.MountPoint == "" {
		return DiskEnforcement{}, fmt.Errorf("probe disk quota of %s: no mount holds it", dir)
	}
	return best, nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			okOct := true
			for _, c := range []byte(s[i+1 : i+4]) {
				if c < '0' || c > '7' {
					okOct = false
					break
				}
				v = v*8 + (c - '0')
			}
			if okOct {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
