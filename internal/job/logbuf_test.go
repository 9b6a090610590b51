package job

import (
	"strings"
	"testing"
)

func TestLogBufKeepsTheLastCapCharacters(t *testing.T) {
	lb := newLogBuf(10)
	for _, s := range []string{"abcd", "efgh", "ijkl"} {
		lb.append(LogChunk{Stream: "stdout", Text: s})
	}
	chunks, next, _, _ := lb.since(0)
	var sb strings.Builder
	for _, c := range chunks {
		sb.WriteString(c.Text)
	}
	if sb.String() != "cdefghijkl" {
		t.Fatalf("kept %q, want the last 10 characters", sb.String())
	}
	if next != 3 {
		t.Fatalf("cursor %d, want 3", next)
	}
	// A follower's cursor stays valid across trims.
	lb.append(LogChunk{Stream: "stdout", Text: "mnopqrstuvwxyz"})
	more, _, _, _ := lb.since(next)
	if len(more) != 1 || more[0].Text != "qrstuvwxyz" {
		t.Fatalf("after trim: %+v", more)
	}
	// Multi-byte characters count as one.
	lb2 := newLogBuf(3)
	lb2.append(LogChunk{Text: "ééééé"})
	c, _, _, _ := lb2.since(0)
	if c[0].Text != "ééé" {
		t.Fatalf("runes: %q", c[0].Text)
	}
}

func TestStreamWriterRedactsSecretsSplitAcrossWrites(t *testing.T) {
	lb := newLogBuf(1000)
	w := newStreamWriter("stdout", lb, redactor([]string{"topsecret", "top"}))
	w.Write([]byte("key=tops"))
	w.Write([]byte("ecret and top\nnext"))
	w.Flush()
	chunks, _, _, _ := lb.since(0)
	var sb strings.Builder
	for _, c := range chunks {
		sb.WriteString(c.Text)
	}
	if got := sb.String(); got != "key=[hidden] and [hidden]\nnext" {
		t.Fatalf("got %q", got)
	}
}

func TestSafeRelPath(t *testing.T) {
	for p, want := range map[string]bool{"main.py": true, "lib/x.py": true, "../x": false, "/etc/passwd": false,
		"a/../../b": false, "": false, ".": false, "a\\b": false, "./a": false} {
		if got := safeRelPath(p); got != want {
			t.Errorf("safeRelPath(%q) = %v", p, got)
		}
	}
}
