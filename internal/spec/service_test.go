package spec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Datagrok's own files (testdata/datagrok, sources in SOURCES) are accepted as they are, with
// their fields applied.
func TestContainerJSONDatagrokFiles(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	cases := []struct {
		file     string
		cpu      float64
		memory   int64
		gpu      int
		onDemand bool
		shutdown *float64
		timeout  *float64
		env      map[string]string
		warnings int
	}{
		{"ADMETox", 1, 1024, 1, false, nil, nil, nil, 0},
		{"Admetica", 1, 6144, 1, true, f(30), nil, nil, 0},
		{"AiZynthFinder-aizynthfinder", 2, 6144, 0, true, nil, f(30), nil, 0},
		{"ApiTests-apitests-docker-test1", 1, 256, 0, false, nil, nil, nil, 0},
		{"Bio", 1, 1024, 0, true, nil, f(30), nil, 0},
		{"Bio-autodock", 1, 1024, 1, false, nil, nil, nil, 0},
		{"Boltz1-boltz", 2, 16385, 0, true, nil, f(30), nil, 0},
		{"Chem-boltz", 2, 6144, 0, false, nil, nil, nil, 0},
		{"Chem-chem", 0.5, 1024, 0, false, nil, nil, nil, 0},
		{"Chem-chemprop", 2, 3072, 0, false, nil, f(30), nil, 0},
		{"Chem-reinvent", 1, 6144, 0, false, nil, nil, nil, 0},
		{"Docking-autodock", 1, 1024, 1, true, f(30), nil, nil, 0},
		{"Docking-boltz", 1, 8192, 1, true, nil, f(30), nil, 0},
		{"MolTrack", 1, 512, 0, false, nil, nil, map[string]string{"db": "#{x.moltrack}"}, 0},
		{"Retrosynthesis-aizynthfinder", 4, 10240, 0, true, f(30), nil, nil, 0},
	}
	files, _ := filepath.Glob("testdata/datagrok/*.container.json")
	if len(files) != len(cases) {
		t.Errorf("%d files in testdata/datagrok, %d cases: give each file a case", len(files), len(cases))
	}
	eq := func(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata/datagrok", c.file+".container.json"))
			if err != nil {
				t.Fatal(err)
			}
			cj, err := ParseContainerJSON(data)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if cj.CPU != c.cpu || cj.Memory != c.memory || cj.GPU != c.gpu || cj.OnDemand != c.onDemand ||
				!eq(cj.ShutdownTimeout, c.shutdown) || !eq(cj.TimeoutMinutes, c.timeout) || len(cj.Warnings) != c.warnings {
				t.Errorf("got %+v", cj)
			}
			for k, v := range c.env {
				if cj.Env[k] != v {
					t.Errorf("env %s = %q, want %q", k, cj.Env[k], v)
				}
			}
			if cj.Storage != 21 || cj.ShmSize != 64 {
				t.Errorf("defaults lost: %+v", cj)
			}
		})
	}
}

func TestContainerJSONEveryProblem(t *testing.T) {
	cj, err := ParseContainerJSON([]byte(`{"cpu": "two", "memory": 1, "gpu": -1, "on_demand": "yes",
		"env": {"1BAD": "x"}, "timeout_minutes": 0, "replicas": 3, "image_name": "x"}`))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want a *ValidationError, got %v", err)
	}
	want := map[string]string{"cpu": "cores", "memory": "MB", "gpu": "GPUs", "on_demand": "true or false",
		"env.1BAD": "variable name", "timeout_minutes": "minutes"}
	got := map[string]string{}
	for _, p := range ve.Problems {
		got[p.Field] = p.Message
	}
	for f, w := range want {
		if !strings.Contains(got[f], w) {
			t.Errorf("%s: %q, want it to say %q (all: %v)", f, got[f], w, err)
		}
	}
	if len(ve.Problems) != len(want) {
		t.Errorf("%d problems, want %d: %v", len(ve.Problems), len(want), err)
	}
	if len(cj.Warnings) != 2 || !strings.Contains(cj.Warnings[0], "image_name: unknown field") ||
		!strings.Contains(cj.Warnings[1], "replicas: unknown field") || !strings.Contains(cj.Warnings[1], "shutdown_timeout") {
		t.Errorf("warnings %q", cj.Warnings)
	}
}

func TestContainerJSONUnknownFieldWarns(t *testing.T) {
	cj, err := ParseContainerJSON([]byte(`{"cpu": 1, "replicas": 2}`))
	if err != nil || len(cj.Warnings) != 1 || cj.CPU != 1 {
		t.Fatalf("got %+v, %v", cj, err)
	}
}

func TestContainerJSONEnvironmentVarsMerge(t *testing.T) {
	cj, err := ParseContainerJSON([]byte(`{"env": {"A": "env", "B": "b"}, "environmentVars": {"A": "ev", "C": "c"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if cj.Env["A"] != "env" || cj.Env["B"] != "b" || cj.Env["C"] != "c" || len(cj.Env) != 3 {
		t.Errorf("env %v", cj.Env)
	}
	if len(cj.Warnings) != 1 || !strings.Contains(cj.Warnings[0], "environmentVars.A") {
		t.Errorf("warnings %q", cj.Warnings)
	}
}

// FuzzContainerJSON: the parser never panics; what it accepts has its limits in range.
func FuzzContainerJSON(f *testing.F) {
	files, _ := filepath.Glob("testdata/datagrok/*.container.json")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Add([]byte(`{"cpu": "x", "zzz": 1, "environmentVars": {"A": "1"}, "timeout_minutes": null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cj, err := ParseContainerJSON(data)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("error %v is not a list of problems", err)
			}
			return
		}
		if cj.CPU <= 0 || cj.Memory < 6 || cj.GPU < 0 || (cj.TimeoutMinutes != nil && *cj.TimeoutMinutes <= 0) {
			t.Fatalf("accepted out of range: %+v", cj)
		}
	})
}

func TestExposedPort(t *testing.T) {
	cases := []struct {
		name, df string
		port     int
		errHas   string
	}{
		{"one", "FROM python:3.11\nEXPOSE 8000\n", 8000, ""},
		{"tcp suffix", "FROM python:3.11\nEXPOSE 8000/tcp\n", 8000, ""},
		{"lower case", "from python:3.11\nexpose 8080\n", 8080, ""},
		{"none", "FROM python:3.11\nCMD [\"x\"]\n", 0, "exposes none"},
		{"two", "FROM python:3.11\nEXPOSE 8000 9000\n", 0, "8000, 9000"},
		{"two lines", "FROM python:3.11\nEXPOSE 8000\nEXPOSE 9000\n", 0, "8000, 9000"},
		{"same twice", "FROM python:3.11\nEXPOSE 8000\nEXPOSE 8000/tcp\n", 8000, ""},
		{"udp", "FROM python:3.11\nEXPOSE 8000/udp\n", 0, "not a TCP port"},
		{"range", "FROM python:3.11\nEXPOSE 8000-8001\n", 0, "range"},
		{"not a number", "FROM python:3.11\nEXPOSE http\n", 0, "not a TCP port"},
		{"too big", "FROM python:3.11\nEXPOSE 70000\n", 0, "not a TCP port"},
		{"no FROM", "EXPOSE 8000\n", 0, "FROM"},
		{"ARG default braces", "FROM python:3.11\nARG PORT=8000\nEXPOSE ${PORT}\n", 8000, ""},
		{"ARG default dollar", "FROM python:3.11\nARG PORT=8000\nEXPOSE $PORT\n", 8000, ""},
		{"ENV", "FROM python:3.11\nENV PORT=8000\nEXPOSE $PORT\n", 8000, ""},
		{"ENV old form", "FROM python:3.11\nENV PORT 8000\nEXPOSE $PORT\n", 8000, ""},
		{"ENV from ARG", "FROM python:3.11\nARG P=8001\nENV PORT=$P\nEXPOSE ${PORT}/tcp\n", 8001, ""},
		{"default in word", "FROM python:3.11\nEXPOSE ${PORT:-8000}\n", 8000, ""},
		{"quoted", "FROM python:3.11\nENV PORT=\"8000\"\nEXPOSE \"$PORT\"\n", 8000, ""},
		{"global ARG redeclared", "ARG PORT=8002\nFROM python:3.11\nARG PORT\nEXPOSE $PORT\n", 8002, ""},
		{"global ARG not redeclared", "ARG PORT=8002\nFROM python:3.11\nEXPOSE $PORT\n", 0, "empty"},
		{"unset", "FROM python:3.11\nEXPOSE $PORT\n", 0, `"$PORT"`},
		{"continuation", "FROM python:3.11\nEXPOSE \\\n  8000\n", 8000, ""},
		{"continuation with comment", "FROM python:3.11\nRUN echo a \\\n# a comment\n  && echo b\nEXPOSE \\\n8000\n", 8000, ""},
		{"comment", "FROM python:3.11\n# EXPOSE 9000\nEXPOSE 8000\n", 8000, ""},
		{"escape directive", "# escape=`\nFROM python:3.11\nEXPOSE `\n  8000\n", 8000, ""},
		{"builder stage exposes", "FROM golang:1.22 AS build\nEXPOSE 9000\nRUN go build\nFROM debian:12\nEXPOSE 8000\n", 8000, ""},
		{"builder only", "FROM golang:1.22 AS build\nEXPOSE 9000\nFROM debian:12\n", 0, "final stage"},
		{"from a stage inherits", "FROM debian:12 AS base\nENV PORT=8003\nEXPOSE $PORT\nFROM base\nRUN true\n", 8003, ""},
		{"stage ENV stays in stage", "FROM debian:12 AS b\nENV PORT=9000\nFROM debian:12\nEXPOSE $PORT\n", 0, "empty"},
		{"heredoc", "# syntax=docker/dockerfile:1\nFROM debian:12\nRUN <<EOF\nEXPOSE 9000\nEOF\nEXPOSE 8000\n", 8000, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			port, err := ExposedPort([]byte(c.df))
			if c.errHas == "" {
				if err != nil || port != c.port {
					t.Fatalf("got %d, %v; want %d", port, err, c.port)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), c.errHas) {
				t.Fatalf("got %d, %v; want an error saying %q", port, err, c.errHas)
			}
		})
	}
}

func TestExposedPortBuildArgs(t *testing.T) {
	df := []byte("FROM python:3.11\nARG PORT=8000\nEXPOSE $PORT\n")
	if p, err := ExposedPortArgs(df, map[string]string{"PORT": "9100"}); err != nil || p != 9100 {
		t.Fatalf("got %d, %v", p, err)
	}
}

func TestBaseImages(t *testing.T) {
	df := []byte("ARG V=3.11\nFROM golang:1.22 AS build\nFROM build AS again\nFROM scratch AS s\nFROM python:${V}-slim\nCOPY --from=build /x /x\n")
	got := strings.Join(BaseImages(df, nil), " ")
	if got != "golang:1.22 python:3.11-slim" {
		t.Errorf("got %q", got)
	}
}

// FuzzExposedPort: reading a Dockerfile never panics, and an accepted port is a TCP port.
func FuzzExposedPort(f *testing.F) {
	f.Add([]byte("FROM python:3.11\nARG PORT=8000\nEXPOSE ${PORT}\n"))
	f.Add([]byte("FROM a AS b\nEXPOSE 1\nFROM b\nENV P=2\nEXPOSE $P/tcp \\\n 2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ExposedPort(data)
		if err == nil && (p < 1 || p > 65535) {
			t.Fatalf("accepted port %d", p)
		}
		BaseImages(data, nil)
	})
}
