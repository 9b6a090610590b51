package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// WrkResult is what one wrk run reports.
type WrkResult struct {
	RPS        float64
	P50Latency time.Duration
	Requests   int64
	Errors     int64 // non-2xx/3xx answers plus socket errors
	// CPUPerRequest is the proxy's own CPU time (user and system) over the requests of the
	// run: less swayed by other load on the machine than requests per second. 0: not measured
	// (the container directly).
	CPUPerRequest time.Duration
}

// cpuTime returns the CPU time (user plus system) used so far by the processes being
// measured.
type cpuTime func() (time.Duration, error)

// selfCPU is this process's CPU time: berth's proxy is the only part of it busy under wrk.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// groupCPU is the CPU time of every live process in process group pgid (nginx's master and
// workers), read from /proc.
func groupCPU(pgid int) cpuTime {
	return func() (time.Duration, error) {
		ents, err := os.ReadDir("/proc")
		if err != nil {
			return 0, err
		}
		var ticks int64
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			if err != nil {
				continue // gone meanwhile
			}
			// pid (comm) state ppid pgrp ... utime(14) stime(15): fields after the last ')'.
			s := string(b)
			f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
			if len(f) < 13 {
				continue
			}
			if g, _ := strconv.Atoi(f[2]); g != pgid || pid <= 0 {
				continue
			}
			u, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			ticks += u + st
		}
		return time.Duration(ticks) * time.Second / clockTicks, nil
	}
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on every Linux berth runs on.
const clockTicks = 100

// wrkRunCPU is wrkRun measuring cpu (when set) around it.
func wrkRunCPU(ctx context.Context, url string, conns int, d time.Duration, headers []string, cpu cpuTime) (WrkResult, error) {
	var before time.Duration
	if cpu != nil {
		var err error
		if before, err = cpu(); err != nil {
			return WrkResult{}, fmt.Errorf("cpu time: %w", err)
		}
	}
	r, err := wrkRun(ctx, url, conns, d, headers)
	if err != nil || cpu == nil || r.Requests == 0 {
		return r, err
	}
	after, err := cpu()
	if err != nil {
		return r, fmt.Errorf("cpu time: %w", err)
	}
	r.CPUPerRequest = (after - before) / time.Duration(r.Requests)
	return r, nil
}

// wrkRun runs wrk against url with conns connections for d, sending headers (each "Name: value").
func wrkRun(ctx context.Context, url string, conns int, d time.Duration, headers []string) (WrkResult, error) {
	bin, err := exec.LookPath("wrk")
	if err != nil {
		return WrkResult{}, errors.New("wrk is not installed: run scripts/bench-prereqs.sh (Debian package wrk)")
	}
	threads := min(conns, 2)
	secs := max(1, int(d.Round(time.Second)/time.Second))
	args := []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", strconv.Itoa(secs) + "s", "--timeout", "10s", "--latency"}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	args = append(args, url)
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return WrkResult{}, fmt.Errorf("wrk %s: %w: %s", url, err, strings.TrimSpace(errb.String()))
	}
	r, err := parseWrk(out.String())
	if err != nil {
		return r, fmt.Errorf("wrk %s: %w", url, err)
	}
	return r, nil
}

var (
	wrkRPS      = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkTotal    = regexp.MustCompile(`(?m)^\s*([0-9]+) requests in`)
	wrkP50      = regexp.MustCompile(`(?m)^\s+50%\s+([0-9.]+)(us|ms|s)\b`)
	wrkNon2xx   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses:\s+([0-9]+)`)
	wrkSockErrs = regexp.MustCompile(`(?m)^\s*Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)`)
)

// parseWrk reads wrk's text report.
func parseWrk(s string) (WrkResult, error) {
	var r WrkResult
	m := wrkRPS.FindStringSubmatch(s)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec in its report: %q", s)
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	if m := wrkTotal.FindStringSubmatch(s); m != nil {
		r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := wrkP50.FindStringSubmatch(s); m != nil {
		v, _ := strconv.ParseFloat(m[1], 64)
		unit := map[string]float64{"us": 1e3, "ms": 1e6, "s": 1e9}[m[2]]
		r.P50Latency = time.Duration(v * unit)
	}
	if m := wrkNon2xx.FindStringSubmatch(s); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		r.Errors += n
	}
	if m := wrkSockErrs.FindStringSubmatch(s); m != nil {
		for _, x := range m[1:] {
			n, _ := strconv.ParseInt(x, 10, 64)
			r.Errors += n
		}
	}
	return r, nil
}

// nginx is a reference reverse proxy started by the bench on loopback.
type nginx struct {
	cmd    *exec.Cmd
	exited chan error
	dir    string
	Addr   string
}

// Stop ends the nginx the bench started (its process group: master and workers) and removes
// its folder.
func (n *nginx) Stop() {
	syscall.Kill(-n.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(5 * time.Second):
		syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		<-n.exited
	}
	os.RemoveAll(n.dir)
}

// nginxConf is nginx in front of one upstream, configured as a careful operator would for a
// keep-alive backend: upstream connections are pooled and reused (HTTP/1.1, no Connection
// header), access logging is off (berth's proxy keeps none either), and the request the app
// sees carries the same forwarded headers berth's proxy sets.
const nginxConf = `daemon off;
master_process on;
worker_processes %d;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[2]s/body;
  proxy_temp_path %[2]s/proxy;
  fastcgi_temp_path %[2]s/fastcgi;
  uwsgi_temp_path %[2]s/uwsgi;
  scgi_temp_path %[2]s/scgi;
  upstream app {
    server %[3]s;
    keepalive 128;
  }
  server {
    listen %[4]s;
    location %[5]s {
      proxy_pass http://app/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Prefix %[6]s;
      proxy_buffering off;
    }
  }
}
`

// startNginx runs nginx on a free loopback port, forwarding prefix (e.g. /proxy/echo/) to
// upstream with the prefix stripped, like berth's proxy in its default mode.
func startNginx(ctx context.Context, upstream, prefix string, workers int) (*nginx, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			return nil, errors.New("nginx is not installed: run scripts/bench-prereqs.sh (Debian package nginx)")
		}
		bin = "/usr/sbin/nginx"
	}
	dir, err := os.MkdirTemp("", "berth-bench-nginx-")
	if err != nil {
		return nil, err
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	conf := fmt.Sprintf(nginxConf, workers, dir, upstream, addr, prefix, strings.TrimSuffix(prefix, "/"))
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// -e (error log before the config is read) appeared in nginx 1.19.5; Debian's is newer.
	cmd := exec.Command(bin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"))
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &errb, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	n := &nginx{cmd: cmd, dir: dir, Addr: addr, exited: make(chan error, 1)}
	go func() { n.exited <- cmd.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-n.exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			os.RemoveAll(dir)
			return nil, fmt.Errorf("nginx exited at start (%v): %s %s", err, strings.TrimSpace(errb.String()), strings.TrimSpace(string(log)))
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return n, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			n.Stop()
			return nil, fmt.Errorf("nginx did not listen on %s within 10s", addr)
		}
	}
}

// freeLoopbackAddr returns a loopback address with a port free right now.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
