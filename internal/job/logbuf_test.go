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

func TestMissingTail(t *testing.T) {
	cases := []struct {
		have, tail, rest string
		gap              bool
	}{
		{"a\nb\nc\n", "b\nc\n", "", false},           // everything delivered
		{"a\nb\n", "b\nc\nd\n", "c\nd\n", false},     // the follower stopped early
		{"a\nb", "b\nc\n", "\nc\n", false},           // ... in the middle of a line
		{"a\nb\n", "x\ny\n", "x\ny\n", true},         // more was lost than the tail holds
		{"", "x\n", "x\n", false},                    // nothing delivered
		{"x\nx\nx\n", "x\nx\nEND\n", "END\n", false}, // repeated lines: the end is kept
		{"abc", "", "", false},
	}
	for _, c := range cases {
		rest, gap := missingTail([]byte(c.have), []byte(c.tail))
		if string(rest) != c.rest || gap != c.gap {
			t.Errorf("missingTail(%q, %q) = %q, %v; want %q, %v", c.have, c.tail, rest, gap, c.rest, c.gap)
		}
	}
}

func TestMissingEndStartsAtALineAfterAGap(t *testing.T) {
	kept, tail := newTailKeeper(nil, 64), newTailKeeper(nil, 10)
	kept.Write([]byte("early\n"))
	tail.Write([]byte("aaaa\nbbbb\nccc\nEND\n")) // kept: "b\nccc\nEND\n"
	rest, gap := missingEnd(kept, tail)
	if !gap || string(rest) != "ccc\nEND\n" {
		t.Fatalf("rest %q gap %v", rest, gap)
	}
}

func TestTailKeeperKeepsTheLastBytes(t *testing.T) {
	var all strings.Builder
	k := newTailKeeper(&all, 10)
	want := ""
	for i := 0; i < 100; i++ {
		s := strings.Repeat(string(rune('a'+i%26)), i%13)
		k.Write([]byte(s))
		want += s
	}
	if all.String() != want {
		t.Fatal("the stream was not passed on whole")
	}
	if got := string(k.Bytes()); got != want[len(want)-10:] {
		t.Fatalf("kept %q, want %q", got, want[len(want)-10:])
	}
}

// BenchmarkLogBufAppend appends one line at a time to a full buffer: the cost per append must
// not grow with the buffer.
func BenchmarkLogBufAppend(b *testing.B) {
	lb := newLogBuf(1_000_000)
	big := LogChunk{Stream: "stdout", Text: strings.Repeat("é", 900_000)}
	lb.append(big)
	line := LogChunk{Stream: "stdout", Text: strings.Repeat("x", 63) + "\n"}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lb.append(line)
	}
}
