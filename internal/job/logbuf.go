package job

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// logBuf is a job's output: chunks in order, capped to the last cap characters, readable
// while it grows. Readers follow with an absolute cursor; chunks trimmed off the front are
// counted in dropped so cursors stay valid.
type logBuf struct {
	mu      sync.Mutex
	chunks  []LogChunk
	runes   []int // characters in each kept chunk, beside chunks
	chars   int
	cap     int
	dropped int           // chunks trimmed off the front so far
	changed chan struct{} // closed and replaced on every append and on close
	closed  bool
	dirty   bool
}

func newLogBuf(cap int) *logBuf {
	if cap <= 0 {
		cap = 1_000_000
	}
	return &logBuf{cap: cap, changed: make(chan struct{})}
}

// append adds a chunk, trimming the oldest output past the cap. It costs O(len(c.Text)),
// amortized, whatever the size of the buffer.
func (l *logBuf) append(c LogChunk) {
	if c.Text == "" {
		return
	}
	n := utf8.RuneCountInString(c.Text)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.chunks = append(l.chunks, c)
	l.runes = append(l.runes, n)
	l.chars += n
	for l.chars > l.cap && len(l.chunks) > 0 {
		over := l.chars - l.cap
		if l.runes[0] <= over {
			l.chars -= l.runes[0]
			l.chunks[0] = LogChunk{} // let the text go
			l.chunks, l.runes = l.chunks[1:], l.runes[1:]
			l.dropped++
			continue
		}
		// Keep the tail of the first chunk: skip over characters from its front (over is at
		// most the new chunk's length, so this stays proportional to it).
		first := &l.chunks[0]
		i := 0
		for k := 0; k < over; k++ {
			_, size := utf8.DecodeRuneInString(first.Text[i:])
			i += size
		}
		first.Text = first.Text[i:]
		l.runes[0] -= over
		l.chars -= over
	}
	l.dirty = true
	close(l.changed)
	l.changed = make(chan struct{})
}

// close marks the output complete; followers stop once they have read everything.
func (l *logBuf) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.changed)
	}
}

// since returns the chunks from absolute index cursor on, the next cursor, whether the buffer
// is closed, and a channel that closes on the next change.
func (l *logBuf) since(cursor int) ([]LogChunk, int, bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := cursor - l.dropped
	if i < 0 {
		i = 0
	}
	var out []LogChunk
	if i < len(l.chunks) {
		out = append(out, l.chunks[i:]...)
	}
	return out, l.dropped + len(l.chunks), l.closed, l.changed
}

// snapshot returns a copy of every chunk kept, and clears the dirty flag.
func (l *logBuf) snapshot() ([]LogChunk, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.dirty
	l.dirty = false
	return append([]LogChunk(nil), l.chunks...), d
}

// save writes the kept output to path atomically.
func (l *logBuf) save(path string) error {
	chunks, _ := l.snapshot()
	return writeChunks(path, chunks)
}

func writeChunks(path string, chunks []LogChunk) error {
	if chunks == nil {
		chunks = []LogChunk{}
	}
	b, err := json.Marshal(chunks)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readChunks(path string) ([]LogChunk, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []LogChunk
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// streamWriter turns a byte stream into chunks of whole lines, with secrets redacted. Lines
// are held back until their newline so a secret is never split across two chunks; a partial
// line is released when it grows past maxPending or on Flush.
type streamWriter struct {
	mu      sync.Mutex
	stream  string
	buf     *logBuf
	redact  *strings.Replacer
	pending []byte
}

const maxPending = 64 << 10

func newStreamWriter(stream string, buf *logBuf, redact *strings.Replacer) *streamWriter {
	return &streamWriter{stream: stream, buf: buf, redact: redact}
}

func (w *streamWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = append(w.pending, p...)
	if i := bytes.LastIndexByte(w.pending, '\n'); i >= 0 {
		w.emit(w.pending[:i+1])
		w.pending = append(w.pending[:0], w.pending[i+1:]...)
	} else if len(w.pending) > maxPending {
		w.emit(w.pending)
		w.pending = w.pending[:0]
	}
	return len(p), nil
}

// setRedact changes what the writer hides, for what it writes from now on.
func (w *streamWriter) setRedact(r *strings.Replacer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.redact = r
}

// Flush releases a trailing partial line.
func (w *streamWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) > 0 {
		w.emit(w.pending)
		w.pending = w.pending[:0]
	}
}

func (w *streamWriter) emit(b []byte) {
	text := strings.ToValidUTF8(string(b), "\uFFFD")
	if w.redact != nil {
		text = w.redact.Replace(text)
	}
	w.buf.append(LogChunk{Stream: w.stream, Text: text, Time: time.Now().UTC()})
}

// redactor replaces every secret value with [hidden]; nil when there are none.
func redactor(secrets []string) *strings.Replacer {
	// Longest first, so a secret that contains another is hidden whole.
	sorted := append([]string(nil), secrets...)
	sort.Slice(sorted, func(i, j int) bool { return len(sorted[i]) > len(sorted[j]) })
	var pairs []string
	for _, s := range sorted {
		if s != "" {
			pairs = append(pairs, s, "[hidden]")
		}
	}
	if len(pairs) == 0 {
		return nil
	}
	return strings.NewReplacer(pairs...)
}

// tailKeeper passes a stream on to w and keeps its last max bytes, so the end of what a
// follower delivered can be compared with the task's real end.
type tailKeeper struct {
	w       io.Writer
	max     int
	buf     []byte // the last max bytes are at its end; it grows to 2*max before shifting
	written int64
}

func newTailKeeper(w io.Writer, max int) *tailKeeper { return &tailKeeper{w: w, max: max} }

func (t *tailKeeper) Write(p []byte) (int, error) {
	t.written += int64(len(p))
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
	} else {
		if len(t.buf)+len(p) > 2*t.max {
			keep := t.max - len(p)
			t.buf = append(t.buf[:0], t.buf[len(t.buf)-keep:]...)
		}
		t.buf = append(t.buf, p...)
	}
	if t.w == nil {
		return len(p), nil
	}
	return t.w.Write(p)
}

// Bytes returns the last (at most max) bytes written.
func (t *tailKeeper) Bytes() []byte {
	if len(t.buf) > t.max {
		return t.buf[len(t.buf)-t.max:]
	}
	return t.buf
}

// missingEnd is what tail (the stream's real end, read again) holds that kept (what the
// follower delivered) does not; see missingTail. After a gap it starts at a line.
func missingEnd(kept, tail *tailKeeper) (rest []byte, gap bool) {
	rest, gap = missingTail(kept.Bytes(), tail.Bytes())
	if gap && tail.written > int64(tail.max) {
		// The tail was cut to its last max bytes: drop the partial first line.
		if i := bytes.IndexByte(rest, '\n'); i >= 0 && i+1 < len(rest) {
			rest = rest[i+1:]
		}
	}
	return rest, gap
}

// missingTail compares what a follower delivered of a stream (have, its last bytes) with the
// stream's real end (tail) and returns the part of tail that was not delivered. gap is true
// when tail does not continue have at all: some output between them was never read.
func missingTail(have, tail []byte) (rest []byte, gap bool) {
	if len(tail) == 0 || bytes.HasSuffix(have, tail) {
		return nil, false
	}
	k := overlap(have, tail)
	return tail[k:], k == 0 && len(have) > 0
}

// overlap is the length of the longest prefix of tail that is a suffix of have, in
// O(len(have)+len(tail)) (Knuth-Morris-Pratt: tail is the pattern, have the text).
func overlap(have, tail []byte) int {
	if len(tail) == 0 {
		return 0
	}
	fail := make([]int, len(tail))
	for i, k := 1, 0; i < len(tail); i++ {
		for k > 0 && tail[i] != tail[k] {
			k = fail[k-1]
		}
		if tail[i] == tail[k] {
			k++
		}
		fail[i] = k
	}
	k := 0
	for _, c := range have {
		for k > 0 && (k == len(tail) || c != tail[k]) {
			k = fail[k-1]
		}
		if c == tail[k] {
			k++
		}
	}
	return k
}
