package job_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/berthproject/berth/internal/job"
)

// TestLargeOutputKeepsItsLastLine runs two jobs at once that each print 200 MB ending in a
// marker line: the stored output (live and saved) ends with the marker and stays within the
// cap.
func TestLargeOutputKeepsItsLastLine(t *testing.T) {
	h := newHarness(t, func(c *job.Config) { c.Workers = 2 })
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
			blk := h.Block("yes " + line + " | head -c 200000000; echo " + marker)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			j, err := h.M.Submit(ctx, job.Submission{Block: blk, BaseDir: h.Cfg.ShareRoots[0], Owner: "tester"})
			if err != nil {
				t.Errorf("submit: %v", err)
				return
			}
			if j, err = h.M.Wait(ctx, j.ID); err != nil {
				t.Errorf("wait: %v", err)
				return
			}
			if j.State != job.StateSucceeded {
				t.Errorf("job %s: %s/%s %s", j.ID, j.State, j.Reason, j.Message)
			}
			check := func(where string, chunks []job.LogChunk) {
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
				if chars > h.Cfg.LogCap {
					t.Errorf("%s of job %s: %d characters kept, cap %d", where, j.ID, chars, h.Cfg.LogCap)
				}
			}
			var live []job.LogChunk
			if err := h.M.Logs(ctx, j.ID, false, func(c job.LogChunk) error { live = append(live, c); return nil }); err != nil {
				t.Errorf("logs: %v", err)
			}
			check("logs", live)
			saved, err := job.ReadChunks(h.M.LogPath(j.ID))
			if err != nil {
				t.Errorf("read output.json: %v", err)
			}
			check("output.json", saved)
		}()
	}
	wg.Wait()
}
