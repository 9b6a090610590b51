package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader in two goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// `berth service ws` prints every message the service sends, as it arrives: a greeting sent
// before any input, and several messages for each one received.
func TestServiceWSPrintsEveryMessage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/proxy/chat/ws" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "wrong path or token: "+r.URL.Path, http.StatusBadRequest)
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		c.Write(ctx, websocket.MessageText, []byte("welcome"))
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			for i := 1; i <= 3; i++ {
				// Apart in time, as a busy app's pushes are.
				time.Sleep(20 * time.Millisecond)
				c.Write(ctx, websocket.MessageText, []byte(fmt.Sprintf("%s-%d", b, i)))
			}
		}
	}))
	defer srv.Close()

	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	g := &globals{stdout: stdout, stderr: stderr, dataDir: t.TempDir()}
	cmd := newServiceCmd(g)
	cmd.SetArgs([]string{"ws", "--server", srv.URL, "--token", "tok", "chat", "/ws"})
	cmd.SetIn(strings.NewReader("a\nb\n"))
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatalf("service ws: %v\n%s", err, stderr)
	}
	if got, want := stdout.String(), "welcome\na-1\na-2\na-3\nb-1\nb-2\nb-3\n"; got != want {
		t.Fatalf("printed %q, want %q", got, want)
	}
}
