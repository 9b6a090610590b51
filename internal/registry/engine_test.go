package registry_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// TestEngineLoginAndPush: the Docker Engine itself logs in to the registry with a berth API
// token as the password and pushes through berth's tokens (dockerd treats 127.0.0.0/8 as an
// insecure registry, so plain HTTP on loopback is allowed). The docker CLI only relays: the
// login check (POST /auth) and the push run in the engine. Its config (the stored login)
// lives in the test's own DOCKER_CONFIG.
func TestEngineLoginAndPush(t *testing.T) {
	eng := enginetest.Require(t)
	docker, err := exec.LookPath("docker")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("this test drives the engine with the docker CLI, which is missing: %v", err)
		}
		t.Skipf("no docker CLI: %v", err)
	}
	base := enginetest.Busybox(t, eng)
	f := newRealFixture(t)
	cfgDir := t.TempDir()
	run := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(docker, args...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfgDir)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	ref := f.reg.Host + "/p1/busybox:" + enginetest.Unique(t)
	if out, err := run("", "tag", base, ref); err != nil {
		t.Fatalf("docker tag: %v\n%s", err, out)
	}
	t.Cleanup(func() { run("", "rmi", ref) }) // the tag only: the busybox image keeps its own

	if out, err := run("berth_not-a-token", "login", f.reg.Host, "-u", "ann", "--password-stdin"); err == nil {
		t.Fatalf("docker login with a wrong token succeeded:\n%s", out)
	}
	if out, err := run(f.tok["bob"], "login", f.reg.Host, "-u", "bob", "--password-stdin"); err != nil {
		t.Fatalf("docker login as bob (member of p2): %v\n%s", err, out)
	}
	if out, err := run("", "push", ref); err == nil {
		t.Fatalf("bob (member of p2) pushed to p1 through the engine:\n%s", out)
	}
	if out, err := run(f.tok["ann"], "login", f.reg.Host, "-u", "ann", "--password-stdin"); err != nil {
		t.Fatalf("docker login as ann (member of p1): %v\n%s", err, out)
	}
	out, err := run("", "push", ref)
	if err != nil {
		t.Fatalf("docker push as ann: %v\n%s", err, out)
	}
	if !strings.Contains(out, "digest: sha256:") {
		t.Fatalf("docker push printed no digest:\n%s", out)
	}
	// And back: the tag removed, the engine pulls it from the registry.
	if out, err := run("", "rmi", ref); err != nil {
		t.Fatalf("docker rmi %s: %v\n%s", ref, err, out)
	}
	if out, err := run("", "pull", ref); err != nil {
		t.Fatalf("docker pull as ann: %v\n%s", err, out)
	}
}
