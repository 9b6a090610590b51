package job

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
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

// TestLargeOutputKeepsItsLastLine runs two jobs at once that each print 200 MB ending in a
// marker line: the stored output (live and saved) ends with the marker and stays within the
// cap.
func TestLargeOutputKeepsItsLastLine(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Workers = 2 })
	const line = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde" // 63 + newline
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b [8]byte
			rand.Read(b[:])
			marker := "END-MARKER-" + hex.EncodeToString(b[:])
			// 200,000,000 bytes of whole 64-byte lines, then the marker.
			blk := h.block("yes " + line + " | head -c 200000000; echo " + marker)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			j, err := h.m.Submit(ctx, Submission{Block: blk, BaseDir: h.cfg.ShareRoots[0], Owner: "tester"})
			if err != nil {
				t.Errorf("submit: %v", err)
				return
			}
			if j, err = h.m.Wait(ctx, j.ID); err != nil {
				t.Errorf("wait: %v", err)
				return
			}
			if j.State != StateSucceeded {
				t.Errorf("job %s: %s/%s %s", j.ID, j.State, j.Reason, j.Message)
			}
			check := func(where string, chunks []LogChunk) {
				var sb strings.Builder
				chars := 0
				for _, c := range chunks {
					chars += utf8.RuneCountInString(c.Text)
					switch c.Stream {
					case "stdout":
						sb.WriteString(c.Text)
					case "system":
						t.Logf("%s of job %s, system: %s", where, j.ID, strings.TrimSpace(c.Text))
					}
				}
				out := sb.String()
				if !strings.HasSuffix(out, "\n"+line+"\n"+marker+"\n") {
					tail := out
					if len(tail) > 200 {
						tail = tail[len(tail)-200:]
					}
					t.Errorf("%s of job %s: stdout does not end with the marker %s; it ends %q", where, j.ID, marker, tail)
				}
				if chars > h.cfg.LogCap {
					t.Errorf("%s of job %s: %d characters kept, cap %d", where, j.ID, chars, h.cfg.LogCap)
				}
			}
			var live []LogChunk
			if err := h.m.Logs(ctx, j.ID, false, func(c LogChunk) error { live = append(live, c); return nil }); err != nil {
				t.Errorf("logs: %v", err)
			}
			check("logs", live)
			saved, err := readChunks(h.m.logPath(j.ID))
			if err != nil {
				t.Errorf("read output.json: %v", err)
			}
			check("output.json", saved)
		}()
	}
	wg.Wait()
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
