package service

import (
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/runtime"
)

func TestParseImageRef(t *testing.T) {
	for _, tc := range []struct {
		ref                 string
		host, repo, project string
		bad                 bool
	}{
		{ref: "127.0.0.1:5000/p1/app:1.0.0", host: "127.0.0.1:5000", repo: "p1/app", project: "p1"},
		{ref: "reg.example/p1/tools/cli:2", host: "reg.example", repo: "p1/tools/cli", project: "p1"},
		{ref: "localhost/p1/app@sha256:" + strings.Repeat("a", 64), host: "localhost", repo: "p1/app", project: "p1"},
		{ref: "p1/app:1.0.0", repo: "p1/app", project: "p1"}, // published without a registry
		{ref: "reg.example:5000/app:1", bad: true},           // no project
		{ref: "app:1", bad: true},
		{ref: "reg.example/P1/app:1", bad: true}, // upper case
		{ref: "reg.example/p1/../app:1", bad: true},
		{ref: "", bad: true},
	} {
		r, err := parseImageRef(tc.ref)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: accepted as %+v", tc.ref, r)
			}
			continue
		}
		if err != nil || r.host != tc.host || r.repo != tc.repo || r.project != tc.project {
			t.Errorf("%q: %+v, %v; want host %q repo %q project %q", tc.ref, r, err, tc.host, tc.repo, tc.project)
		}
	}
}

func FuzzParseImageRef(f *testing.F) {
	for _, s := range []string{"127.0.0.1:5000/p1/app:1", "p1/app", "reg/p1/a@sha256:00", "a:b:c/d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseImageRef(s)
		if err == nil && (r.project == "" || !strings.HasPrefix(r.repo, r.project+"/") || strings.Contains(r.repo, "..")) {
			t.Fatalf("%q: %+v", s, r)
		}
	})
}

func TestExposedPort(t *testing.T) {
	for _, tc := range []struct {
		ports []string
		want  int
	}{
		{[]string{"8080/tcp"}, 8080},
		{nil, 0},
		{[]string{"80/tcp", "443/tcp"}, 0},
		{[]string{"53/udp"}, 0},
	} {
		got, err := exposedPort(runtime.Image{ExposedPorts: tc.ports})
		if got != tc.want || (tc.want == 0) != (err != nil) {
			t.Errorf("%v: %d, %v", tc.ports, got, err)
		}
	}
}
