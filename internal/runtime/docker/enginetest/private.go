package enginetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker"
)

// Private is a Docker Engine of the test's own: a second dockerd with its own socket, data
// root, exec root, pid file, managed containerd and default bridge, so a test can stop and
// restart an engine under berth without touching the machine's engine.
//
// What it changes on the host, and undoes in t.Cleanup: one bridge interface of its own, with
// an address from a 10.x.0.0/16 no host address or route overlaps. It never touches iptables
// (--iptables=false, --ip-masq=false, --ip-forward=false). Two dockerd options are never used
// because dockerd 20.10 then deletes the interface named docker0, the machine's engine's:
// --bridge none (at every start) and --default-address-pool (at every start after the first).
// Without the latter, networks the engine makes on its own come from 172.17-31 like the
// machine's engine's and may collide with them: make networks with CreateNetwork instead,
// which takes their subnet from the private range. Every start and stop checks that docker0
// is still there when it was at the start.
type Private struct {
	dir    string // short: unix socket paths are limited to 108 bytes
	bridge string
	bip    string // the bridge's address, 10.x.255.1/24
	x      int    // the second byte of the private range
	nets   int    // networks made by CreateNetwork

	docker0 bool // the machine's docker0 existed when the engine started

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exits
	runs int
}

// StartPrivate starts a private engine for the test, waits until it answers, and stops and
// removes it (its containers, mounts, bridge and folders) when the test ends. Without
// dockerd, or without the right to run it (root), the test is skipped, except under CI=true.
func StartPrivate(t testing.TB) *Private {
	t.Helper()
	skip := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("this test needs a private Docker Engine and CI=true forbids skipping: "+format, args...)
		}
		t.Skipf("no private Docker Engine: "+format, args...)
	}
	for _, bin := range []string{"dockerd", "containerd", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			skip("%s is not installed: %v", bin, err)
		}
	}
	if os.Geteuid() != 0 {
		skip("dockerd needs root")
	}
	dir, err := os.MkdirTemp("", "bpe")
	if err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	rand.Read(b[:])
	p := &Private{dir: dir, bridge: "bpe" + hex.EncodeToString(b[:])}
	t.Cleanup(func() { p.cleanup(t) })
	if p.x, err = freeRange(); err != nil {
		t.Fatalf("private engine: %v", err)
	}
	p.bip = fmt.Sprintf("10.%d.255.1/24", p.x)
	_, err = net.InterfaceByName("docker0")
	p.docker0 = err == nil
	if out, err := exec.Command("ip", "link", "add", p.bridge, "type", "bridge").CombinedOutput(); err != nil {
		skip("create the bridge %s: %v: %s", p.bridge, err, out)
	}
	for _, args := range [][]string{{"addr", "add", p.bip, "dev", p.bridge}, {"link", "set", p.bridge, "up"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("private engine: ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	for _, d := range []string{"data", "x"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// An empty configuration file: the machine's /etc/docker/daemon.json must not apply.
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.Start(t)
	return p
}

// Host is the engine's address, for docker.Options.Host.
func (p *Private) Host() string { return "unix://" + filepath.Join(p.dir, "d.sock") }

// Engine connects to the private engine; the connection is closed when the test ends.
func (p *Private) Engine(t testing.TB) *docker.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := docker.New(ctx, docker.Options{Host: p.Host()})
	if err != nil {
		t.Fatalf("connect to the private engine: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// Busybox builds the busybox test image (see Busybox) in the private engine.
func (p *Private) Busybox(t testing.TB, e *docker.Engine) string {
	t.Helper()
	return buildBusybox(t, e)
}

// Start starts the engine (again, with the same folders) and waits until it answers.
func (p *Private) Start(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		t.Fatal("private engine: already running")
	}
	p.runs++
	logf, err := os.OpenFile(p.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== start %d\n", p.runs)
	cmd := exec.Command("dockerd",
		"--config-file", filepath.Join(p.dir, "daemon.json"),
		"--host", p.Host(),
		"--data-root", filepath.Join(p.dir, "data"),
		"--exec-root", filepath.Join(p.dir, "x"),
		"--pidfile", filepath.Join(p.dir, "d.pid"),
		"--storage-driver", "vfs",
		"--iptables=false", "--ip-masq=false", "--ip-forward=false", "--userland-proxy=false",
		"--bridge", p.bridge, // its address (bip) is set on the link: dockerd takes it from there
		"--shutdown-timeout", "5",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a signal meant for the test never reaches it, nor the reverse.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	p.cmd, p.done = cmd, done

	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		e, err := docker.New(ctx, docker.Options{Host: p.Host()})
		cancel()
		if err == nil {
			e.Close()
			p.checkHost(t)
			return
		}
		select {
		case <-done:
			p.cmd = nil
			t.Fatalf("private dockerd exited at start (%v):\n%s", cmd.ProcessState, p.logTail(40))
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("private dockerd does not answer after 60 s: %v\n%s", err, p.logTail(40))
		}
	}
}

// Stop sends sig to the engine (syscall.SIGTERM: an orderly shutdown that stops its
// containers; syscall.SIGKILL: a crash that leaves them to the next start) and waits until it
// has exited.
func (p *Private) Stop(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.stop(sig, 60*time.Second); err != nil {
		t.Fatalf("stop the private engine: %v\n%s", err, p.logTail(40))
	}
	p.checkHost(t)
}

// checkHost fails the test when the machine's docker0 went away while the private engine ran:
// a private engine must never change the machine's engine.
func (p *Private) checkHost(t testing.TB) {
	t.Helper()
	if _, err := net.InterfaceByName("docker0"); p.docker0 && err != nil {
		t.Fatalf("the machine's docker0 is gone since the private engine started (%v): the harness must not use an option that removes it\n%s", err, p.logTail(20))
	}
}

// CreateNetwork makes a bridge network in the private engine, with a subnet from the private
// range, carrying the labels (idempotent by name). berth's own CreateNetwork then finds it.
func (p *Private) CreateNetwork(t testing.TB, name string, labels map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli, err := client.NewClientWithOpts(client.WithHost(p.Host()), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.NetworkInspect(ctx, name, network.InspectOptions{}); err == nil {
		return
	}
	p.mu.Lock()
	p.nets++
	n := p.nets
	p.mu.Unlock()
	if n > 250 {
		t.Fatal("private engine: out of subnets")
	}
	subnet := fmt.Sprintf("10.%d.%d.0/24", p.x, n)
	all := map[string]string{runtime.LabelManaged: "true"}
	for k, v := range labels {
		all[k] = v
	}
	_, err = cli.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Labels: all,
		IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: subnet}}}})
	if err != nil {
		t.Fatalf("private engine: create network %s (%s): %v", name, subnet, err)
	}
}

// Restart stops the engine in an orderly way (SIGTERM, as a service manager restarting it
// does) and starts it again with the same folders.
func (p *Private) Restart(t testing.TB) {
	t.Helper()
	p.Stop(t, syscall.SIGTERM)
	p.Start(t)
}

func (p *Private) stop(sig syscall.Signal, wait time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal dockerd: %w", err)
	}
	select {
	case <-p.done:
	case <-time.After(wait):
		p.cmd.Process.Kill()
		<-p.done
		p.cmd = nil
		return fmt.Errorf("dockerd did not exit within %s of %s; killed", wait, sig)
	}
	p.cmd = nil
	// A killed dockerd leaves its managed containerd to exit on its own (parent death signal).
	p.waitContainerd(10 * time.Second)
	return nil
}

// waitContainerd waits until no containerd of this engine runs (its pid file is gone or names
// a dead process).
func (p *Private) waitContainerd(wait time.Duration) {
	pidFile := filepath.Join(p.dir, "x", "containerd", "containerd.pid")
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return
		}
		var pid int
		if _, err := fmt.Sscan(string(b), &pid); err != nil || pid <= 0 || syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cleanup stops the engine (its containers with it), ends what it left running, unmounts what
// it mounted, and removes its bridge and folders.
func (p *Private) cleanup(t testing.TB) {
	if err := p.stop(syscall.SIGTERM, 60*time.Second); err != nil {
		t.Logf("private engine: %v", err)
	}
	if _, err := net.InterfaceByName("docker0"); p.docker0 && err != nil {
		t.Errorf("the machine's docker0 is gone since the private engine started: %v", err)
	}
	if t.Failed() {
		t.Logf("private dockerd log (last lines):\n%s", p.logTail(60))
	}
	p.killLeftovers(t)
	p.unmountAll(t)
	if p.bridge != "" {
		if out, err := exec.Command("ip", "link", "del", p.bridge).CombinedOutput(); err != nil && !bytes.Contains(out, []byte("Cannot find device")) {
			t.Logf("private engine: remove bridge %s: %v: %s", p.bridge, err, out)
		}
	}
	if err := os.RemoveAll(p.dir); err != nil {
		t.Logf("private engine: remove %s: %v", p.dir, err)
	}
}

// killLeftovers kills the container shims (and with them their containers) a crashed engine
// left: the processes whose command line names this engine's folder, and no other.
func (p *Private) killLeftovers(t testing.TB) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte(p.dir+"/")) {
			continue
		}
		t.Logf("private engine: killing leftover process %d: %s", pid, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// unmountAll unmounts everything below the engine's folder, deepest first.
func (p *Private) unmountAll(t testing.TB) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], p.dir+"/") {
			mounts = append(mounts, fields[4])
		}
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	for _, m := range mounts {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			t.Logf("private engine: unmount %s: %v", m, err)
		}
	}
}

func (p *Private) logPath() string { return filepath.Join(p.dir, "dockerd.log") }

func (p *Private) logTail(n int) string {
	b, _ := os.ReadFile(p.logPath())
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freeRange picks, at random, the x of a 10.x.0.0/16 that no address or route of the host
// overlaps.
func freeRange() (int, error) {
	used, err := hostNets()
	if err != nil {
		return 0, err
	}
	for try := 0; try < 50; try++ {
		var b [1]byte
		rand.Read(b[:])
		x := 100 + int(b[0])%150 // 10.100 – 10.249
		_, cand, _ := net.ParseCIDR(fmt.Sprintf("10.%d.0.0/16", x))
		free := true
		for _, u := range used {
			if u.Contains(cand.IP) || cand.Contains(u.IP) {
				free = false
				break
			}
		}
		if free {
			return x, nil
		}
	}
	return 0, errors.New("no free 10.x.0.0/16 for the private engine's networks")
}

// hostNets are the networks of the host's addresses and routes.
func hostNets() ([]*net.IPNet, error) {
	var out []*net.IPNet
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list host addresses: %w", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			out = append(out, &net.IPNet{IP: n.IP.Mask(n.Mask), Mask: n.Mask})
		}
	}
	b, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return out, nil
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		var dst, mask uint32
		if _, err := fmt.Sscanf(f[1]+" "+f[7], "%x %x", &dst, &mask); err != nil || mask == 0 {
			continue
		}
		ip := net.IPv4(byte(dst), byte(dst>>8), byte(dst>>16), byte(dst>>24))
		m := net.IPv4Mask(byte(mask), byte(mask>>8), byte(mask>>16), byte(mask>>24))
		out = append(out, &net.IPNet{IP: ip.Mask(m), Mask: m})
	}
	return out, nil
}
