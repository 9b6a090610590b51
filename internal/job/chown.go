package job

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ChownTree gives the data folder to the container's user. Without the right to chown (berth
// not running as root), it makes the folder writable for everyone instead.
func ChownTree(dir, user string) error {
	uidS, gidS, _ := strings.Cut(user, ":")
	uid, err1 := strconv.Atoi(uidS)
	gid, err2 := strconv.Atoi(gidS)
	if err2 != nil {
		gid = uid
	}
	if err1 != nil {
		return os.Chmod(dir, 0o777)
	}
	return filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return nil // chmod would follow it; outputs holding links are refused anyway
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			if fi.IsDir() {
				return os.Chmod(p, 0o777)
			}
			return os.Chmod(p, 0o666)
		}
		return nil
	})
}
