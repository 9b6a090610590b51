package job

import (
	"strings"
	"testing"
	"time"
)

func TestTailLinesCountsTheScriptsLines(t *testing.T) {
	t0 := time.Now()
	chunks := []LogChunk{
		{Stream: "system", Text: "image x (cache hit)\n", Time: t0},
		{Stream: "stdout", Text: "1\n2\n3\n", Time: t0},
		{Stream: "stderr", Text: "e4\n", Time: t0},
		{Stream: "stdout", Text: "5\n", Time: t0},
		{Stream: "system", Text: "succeeded\n", Time: t0},
	}
	text := func(cs []LogChunk) string {
		var sb strings.Builder
		for _, c := range cs {
			sb.WriteString(c.Stream[:3] + ":" + c.Text)
		}
		return sb.String()
	}
	for _, c := range []struct {
		n    int
		want string
	}{
		{3, "std:3\nstd:e4\nstd:5\nsys:succeeded\n"},
		{1, "std:5\nsys:succeeded\n"},
		{0, ""},
		{99, "sys:image x (cache hit)\nstd:1\nstd:2\nstd:3\nstd:e4\nstd:5\nsys:succeeded\n"},
	} {
		if got := text(tailLines(chunks, c.n)); got != c.want {
			t.Errorf("tail %d = %q, want %q", c.n, got, c.want)
		}
	}
	if got := tailLines(chunks, -1); len(got) != len(chunks) {
		t.Errorf("tail -1 changed the output: %v", got)
	}
}

func TestParseLogWindow(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	w, _, err := ParseLogWindow("3", "10m", now)
	if err != nil || w.Tail != 3 || !w.Since.Equal(now.Add(-10*time.Minute)) {
		t.Fatalf("3, 10m: %+v %v", w, err)
	}
	w, _, err = ParseLogWindow("all", "2026-01-02T03:00:00Z", now)
	if err != nil || w.Tail != -1 || !w.Since.Equal(time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)) {
		t.Fatalf("all, RFC 3339: %+v %v", w, err)
	}
	for _, c := range []struct{ tail, since, field string }{
		{"-1", "", "tail"}, {"x", "", "tail"}, {"3x", "", "tail"}, {"", "yesterday", "since"}, {"", "-5m", "since"},
	} {
		if _, field, err := ParseLogWindow(c.tail, c.since, now); err == nil || field != c.field || !strings.Contains(err.Error(), c.field) {
			t.Errorf("tail %q since %q: field %q, err %v; want an error naming %s", c.tail, c.since, field, err, c.field)
		}
	}
}
