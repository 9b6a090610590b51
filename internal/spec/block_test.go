package spec

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExamplesParse(t *testing.T) {
	paths, _ := filepath.Glob("../../examples/*/block.yaml")
	if len(paths) < 3 {
		t.Fatalf("found %d examples", len(paths))
	}
	for _, p := range paths {
		b, files, err := LoadBlock(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if b.Script != "" && len(files[b.Script]) == 0 {
			t.Errorf("%s: script %s not read", p, b.Script)
		}
	}
}

func TestParseFull(t *testing.T) {
	b, err := ParseBlock([]byte(`
name: full
language: python
script: main.py
dependencies: ["pandas==2.2.1", "numpy>=1.26,<2"]
system_packages: [libpq5]
mounts:
  - {source: data, target: /input}
  - {source: out, target: /results, mode: rw}
limits: {cpu: 0.5, memory: 512m, pids: 100, shm_size: 64m, timeout: 90s, disk: 20m}
env:
  PLAIN: hello
  NUM: 3
  TOKEN: {value: s3cret, secret: true}
parameters: {a: 1, b: [1, 2]}
`), "b.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if b.Limits.Memory != 512<<20 || b.Limits.ShmSize != 64<<20 || time.Duration(b.Limits.Timeout) != 90*time.Second || b.Limits.CPU != 0.5 || b.Limits.Disk != 20<<20 {
		t.Errorf("limits %+v", b.Limits)
	}
	if b.Network != "none" || b.Mounts[0].Mode != "ro" || !b.Mounts[0].ReadOnly() || b.Mounts[1].ReadOnly() {
		t.Errorf("defaults: network %q mounts %+v", b.Network, b.Mounts)
	}
	if b.Env["NUM"].Value != "3" || !b.Env["TOKEN"].Secret || len(b.Secrets()) != 1 || b.EnvMap()["TOKEN"] != "s3cret" {
		t.Errorf("env %+v", b.Env)
	}
	// A secret's value never leaves through JSON.
	j, _ := json.Marshal(b)
	if strings.Contains(string(j), "s3cret") || !strings.Contains(string(j), Hidden) {
		t.Errorf("secret in JSON: %s", j)
	}
}

func TestParseErrorsNameFieldAndLine(t *testing.T) {
	cases := []struct {
		name, yaml, field string
		line              int
		msg               string
	}{
		{"unknown top-level field", "name: a\nlanguage: python\ncode: x\nimage_tag: y\n", "image_tag", 4, "unknown field"},
		{"unknown nested field", "name: a\nlanguage: python\ncode: x\nlimits:\n  memroy: 1g\n", "limits.memroy", 5, "allowed: cpu, memory"},
		{"wrong type", "name: a\nlanguage: python\ncode: x\nlimits:\n  memory: [1]\n", "limits.memory", 5, "must be"},
		{"bad language", "name: a\nlanguage: cobol\ncode: x\n", "language", 2, "allowed: python, r, shell"},
		{"script and code", "name: a\nlanguage: python\nscript: m.py\ncode: x\n", "code", 4, "not both"},
		{"no script", "name: a\nlanguage: python\n", "script", 1, "give the script"},
		{"script escapes", "name: a\nlanguage: python\nscript: ../x.py\n", "script", 3, "relative path"},
		{"relative target", "name: a\nlanguage: python\ncode: x\nmounts:\n  - {source: d, target: input}\n", "mounts[0].target", 5, "absolute"},
		{"reserved target", "name: a\nlanguage: python\ncode: x\nmounts:\n  - {source: d, target: /data}\n", "mounts[0].target", 5, "berth's"},
		{"bad mode", "name: a\nlanguage: python\ncode: x\nmounts:\n  - source: d\n    target: /in\n    mode: rx\n", "mounts[0].mode", 7, "allowed: ro, rw"},
		{"host network", "name: a\nlanguage: python\ncode: x\nnetwork: host\n", "network", 4, "never given"},
		{"reserved env", "name: a\nlanguage: python\ncode: x\nenv:\n  BERTH_X: 1\n", "env.BERTH_X", 5, "berth's own"},
		{"bad size", "name: a\nlanguage: python\ncode: x\nlimits:\n  memory: 12q\n", "limits.memory", 5, "not a size"},
		{"bad disk size", "name: a\nlanguage: python\ncode: x\nlimits:\n  disk: lots\n", "limits.disk", 5, "not a size"},
		{"negative disk", "name: a\nlanguage: python\ncode: x\nlimits:\n  disk: -1\n", "limits.disk", 5, "negative"},
		{"disk of a wrong type", "name: a\nlanguage: python\ncode: x\nlimits:\n  disk: [1]\n", "limits.disk", 5, "must be"},
		{"bad duration", "name: a\nlanguage: python\ncode: x\nlimits:\n  timeout: soon\n", "limits.timeout", 5, "not a duration"},
		{"newline in a dependency", "name: a\nlanguage: python\ncode: x\ndependencies:\n  - \"pandas\\n==1\"\n", "dependencies[0]", 5, "control character"},
		{"pip option", "name: a\nlanguage: python\ncode: x\ndependencies:\n  - -e git+https://x\n", "dependencies[0]", 5, "options are not allowed"},
		{"missing name", "language: python\ncode: x\n", "name", 1, "required"},
		{"duplicate key", "name: a\nname: b\nlanguage: python\ncode: x\n", "name", 2, "twice"},
		{"shell deps", "name: a\nlanguage: shell\ncode: x\ndependencies: [jq]\n", "dependencies[0]", 4, "system_packages"},
		{"api lib without image", "name: a\nlanguage: python\ncode: x\ninstall_api_library: true\n", "install_api_library", 4, "only applies"},
	}
	for _, c := range cases {
		_, err := ParseBlock([]byte(c.yaml), "b.yaml")
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%s: err %v, want a ValidationError", c.name, err)
			continue
		}
		found := false
		for _, p := range ve.Problems {
			if p.Field == c.field && p.Line == c.line && strings.Contains(p.Message, c.msg) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: want %s at line %d with %q, got %+v", c.name, c.field, c.line, c.msg, ve.Problems)
		}
		if !strings.HasPrefix(err.Error(), "b.yaml:") {
			t.Errorf("%s: message does not start with the file: %s", c.name, err)
		}
	}
}

func TestEmptyAndNonMapping(t *testing.T) {
	for _, in := range []string{"", "# only a comment\n", "- a\n- b\n", "just a string"} {
		if _, err := ParseBlock([]byte(in), "b.yaml"); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestLoadBlockReadsScript(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "block.yaml"), []byte("name: a\nlanguage: python\nscript: main.py\n"), 0o644)
	if _, _, err := LoadBlock(filepath.Join(dir, "block.yaml")); err == nil || !strings.Contains(err.Error(), "main.py") {
		t.Fatalf("missing script: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "main.py"), []byte("print(1)\n"), 0o644)
	_, files, err := LoadBlock(filepath.Join(dir, "block.yaml"))
	if err != nil || string(files["main.py"]) != "print(1)\n" {
		t.Fatalf("%v %q", err, files["main.py"])
	}
}

func TestSizesAndDurations(t *testing.T) {
	for in, want := range map[string]ByteSize{"512m": 512 << 20, "1g": 1 << 30, "1.5g": 3 << 29, "64k": 64 << 10, "1024": 1024, "2GiB": 2 << 30, "10MB": 10 << 20} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("%s: %d %v", in, got, err)
		}
	}
	for in, want := range map[string]time.Duration{"30s": 30 * time.Second, "5m": 5 * time.Minute, "90": 90 * time.Second, "1h30m": 90 * time.Minute} {
		if got, err := ParseDuration(in); err != nil || time.Duration(got) != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
}

// FuzzParseBlock: the parser never panics, and what it accepts validates and survives a JSON
// round trip.
func FuzzParseBlock(f *testing.F) {
	paths, _ := filepath.Glob("../../examples/*/block.yaml")
	for _, p := range paths {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	for _, s := range []string{
		"name: a\nlanguage: python\ncode: x\n",
		"name: a\nlanguage: r\nscript: m.R\ndependencies: [digest]\nlimits: {memory: 1g, timeout: 30}\n",
		"name: a\nlanguage: shell\ncode: x\nenv: {A: {value: b, secret: true}}\n",
		"name: a\nlanguage: python\ncode: x\nmounts: [{source: d, target: /in, mode: rw}]\n",
		"{\"name\": \"j\", \"language\": \"python\", \"code\": \"print(1)\"}",
		"a: &x [*x]\n",
		"name: a\nlanguage: python\ncode: x\nlimits:\n  memory: 12q\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBlock(data, "fuzz.yaml")
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("error is not a ValidationError with problems: %v", err)
			}
			return
		}
		if err := b.Validate(); err != nil {
			t.Fatalf("parsed block does not validate: %v", err)
		}
		// Secrets are hidden in JSON, so round-trip a copy without them.
		c := *b
		c.Env = nil
		j, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		if _, err := ParseBlock(j, "roundtrip.json"); err != nil {
			t.Fatalf("round trip of %s: %v", j, err)
		}
	})
}
