package docker_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// engineSocket is the socket this test's engine listens on, resolved, or skips.
func engineSocket(t *testing.T) string {
	t.Helper()
	p := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		if !strings.HasPrefix(h, "unix://") {
			t.Skipf("DOCKER_HOST %s is not a unix socket", h)
		}
		p = strings.TrimPrefix(h, "unix://")
	}
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Skipf("engine socket %s: %v", p, err)
	}
	return r
}

// TestMountsHoldingTheEngineSocketAreRefused: a mount whose source is, or holds, the engine's
// socket is refused whatever name it is given: the socket's folder, that folder by another
// path (/var/run vs /run), a symlink to it, a bind-mount alias of it, a folder holding such an
// alias, a hard link of the socket, and a folder holding that hard link. A plain folder still
// mounts.
func TestMountsHoldingTheEngineSocketAreRefused(t *testing.T) {
	e := enginetest.Require(t)
	img := enginetest.Busybox(t, e)
	l := labels(t)
	enginetest.Cleanup(t, e, l)
	sock := engineSocket(t)
	sockDir := filepath.Dir(sock)
	tmp := t.TempDir()

	cases := map[string]string{
		"the socket's folder":          sockDir,
		"the socket's folder's parent": filepath.Dir(sockDir),
		"the root folder":              "/",
	}
	if r, err := filepath.EvalSymlinks("/var/run"); err == nil && r != "/var/run" {
		cases["/var/run, a link to the socket's folder"] = "/var/run"
	}
	link := filepath.Join(tmp, "run-link")
	if err := os.Symlink(sockDir, link); err != nil {
		t.Fatal(err)
	}
	cases["a symlink to the socket's folder"] = link
	cases["a path through a symlink"] = link + "/."

	// The alias lives outside t.TempDir, read-only, and its folders are removed one by one
	// only once unmounted: a recursive removal must never reach into the socket's folder.
	holder, err := os.MkdirTemp("", "berth-sock-alias-")
	if err != nil {
		t.Fatal(err)
	}
	alias := filepath.Join(holder, "alias")
	os.Mkdir(alias, 0o755)
	if out, err := exec.Command("mount", "--bind", sockDir, alias).CombinedOutput(); err != nil {
		t.Logf("bind-mount alias cases skipped: mount --bind not permitted: %v %s", err, out)
		os.Remove(alias)
		os.Remove(holder)
	} else {
		t.Cleanup(func() {
			if out, err := exec.Command("umount", alias).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v %s (left in place)", alias, err, out)
				return
			}
			os.Remove(alias)
			os.Remove(holder)
		})
		if out, err := exec.Command("mount", "-o", "remount,bind,ro", alias).CombinedOutput(); err != nil {
			t.Fatalf("make the alias read-only: %v %s", err, out)
		}
		cases["a bind-mount alias of the socket's folder"] = alias
		cases["a folder holding a bind-mount alias"] = holder
	}

	hard := filepath.Join(tmp, "hard", "engine.sock")
	os.MkdirAll(filepath.Dir(hard), 0o755)
	if err := os.Link(sock, hard); err != nil {
		t.Logf("hard-link cases skipped: %v", err)
	} else {
		cases["a hard link of the socket"] = hard
		cases["a folder holding a hard link of the socket"] = filepath.Dir(hard)
	}

	ctx := context.Background()
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			id, err := e.Start(ctx, runtime.TaskSpec{Image: img, Labels: l, Cmd: []string{"true"},
				Mounts: []runtime.Mount{{Source: src, Target: "/host", ReadOnly: true}}})
			if err == nil {
				e.Remove(ctx, id)
				t.Fatalf("mount of %s was accepted", src)
			}
			if !strings.Contains(err.Error(), "mount "+src) || !strings.Contains(err.Error(), "socket") {
				t.Fatalf("mount of %s: the error does not name the mount and the socket: %v", src, err)
			}
			t.Log(err)
		})
	}

	// A folder that holds nothing of the engine's mounts as before.
	plain := filepath.Join(tmp, "plain")
	os.MkdirAll(plain, 0o755)
	id := start(t, e, runtime.TaskSpec{Image: img, Labels: l, Cmd: []string{"true"},
		Mounts: []runtime.Mount{{Source: plain, Target: "/host", ReadOnly: true}}})
	if ex, err := e.Wait(ctx, id); err != nil || ex.Code != 0 {
		t.Fatalf("plain mount: %+v %v", ex, err)
	}
}
