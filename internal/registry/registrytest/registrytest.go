// Package registrytest starts a real image registry for tests: Debian's docker-registry (the
// reference distribution registry, `apt-get install docker-registry`; make prereqs installs
// it), on loopback, with `auth: token` pointed at a berth token endpoint. Without the binary a
// test skips, except under CI=true, where it fails.
package registrytest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Binary is the registry's executable, as Debian installs it.
const Binary = "docker-registry"

// Require returns the path of the docker-registry binary; without it the test skips, or
// fails under CI=true.
func Require(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath(Binary)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("this test needs the registry binary %s (apt-get install docker-registry; make prereqs installs it) and CI=true forbids skipping: %v", Binary, err)
		}
		t.Skipf("no %s on PATH (apt-get install docker-registry): %v", Binary, err)
	}
	return path
}

// Auth is the registry's `auth: token` section.
type Auth struct {
	// Realm is berth's token endpoint: http://127.0.0.1:<port>/api/v1/registry/token.
	Realm string
	// Service is the registry's name, the tokens' audience.
	Service string
	// Issuer is the tokens' iss.
	Issuer string
	// RootCertBundle is the certificate file of berth's signing key.
	RootCertBundle string
}

// Registry is a running registry.
type Registry struct {
	// Host is its address, 127.0.0.1:<port>: what image references name.
	Host string
	// URL is http://Host.
	URL string
	// Dir holds its config and storage.
	Dir string

	cmd *exec.Cmd
	log *syncBuffer
}

// Log is what the registry printed so far.
func (r *Registry) Log() string { return r.log.String() }

// Start starts a registry with token auth on a free loopback port and waits until it answers;
// it is stopped and its storage removed when the test ends (its log is printed if the test
// failed).
func Start(t testing.TB, a Auth) *Registry {
	t.Helper()
	bin := Require(t)
	dir := t.TempDir()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a port picked free may be taken before the registry binds it
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		r := &Registry{Host: fmt.Sprintf("127.0.0.1:%d", port), Dir: dir, log: &syncBuffer{}}
		r.URL = "http://" + r.Host
		cfg := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfg, []byte(config(r.Host, filepath.Join(dir, "storage"), a)), 0o600); err != nil {
			t.Fatal(err)
		}
		r.cmd = exec.Command(bin, "serve", cfg)
		r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
		if err := r.cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- r.cmd.Wait() }()
		if lastErr = r.waitReady(exited); lastErr != nil {
			r.cmd.Process.Kill()
			continue
		}
		t.Cleanup(func() {
			r.cmd.Process.Kill()
			<-exited
			if t.Failed() {
				t.Logf("registry log:\n%s", tail(r.Log(), 4000))
			}
		})
		return r
	}
	t.Fatalf("the registry did not start: %v", lastErr)
	return nil
}

// waitReady waits for the registry to answer /v2/ (401 with token auth), at most 30 s: a
// start-up wait, not an assertion on speed.
func (r *Registry) waitReady(exited <-chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	c := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("the registry exited (%v): %s", err, tail(r.Log(), 2000))
		default:
		}
		resp, err := c.Get(r.URL + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			return fmt.Errorf("GET /v2/ answered %d, want 401 (token auth): %s", resp.StatusCode, tail(r.Log(), 2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the registry did not answer on %s within 30s: %s", r.Host, tail(r.Log(), 2000))
}

// config is the registry's configuration: filesystem storage, deletes allowed, token auth.
func config(addr, storage string, a Auth) string {
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	return strings.Join([]string{
		"version: 0.1",
		"log:",
		"  level: info",
		"  accesslog:",
		"    disabled: true",
		"storage:",
		"  filesystem:",
		"    rootdirectory: " + q(storage),
		"  delete:",
		"    enabled: true",
		"http:",
		"  addr: " + q(addr),
		"  secret: " + q(fmt.Sprintf("berth-test-%d", time.Now().UnixNano())),
		"auth:",
		"  token:",
		"    realm: " + q(a.Realm),
		"    service: " + q(a.Service),
		"    issuer: " + q(a.Issuer),
		"    rootcertbundle: " + q(a.RootCertBundle),
		"",
	}, "\n")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
