package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// A response of unknown length is streamed as the service writes it, whatever its type; one
// of known length arrives whole and intact, also when many are copied at once through the
// shared buffers.
func TestProxyStreamsUnknownLengthAndCopiesKnownLength(t *testing.T) {
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "first\n")
			w.(http.Flusher).Flush()
			<-release
			io.WriteString(w, "second\n")
			return
		}
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		seed := r.URL.Query().Get("seed")
		body := bytes.Repeat([]byte(seed), n)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	defer backend.Close()
	front := httptest.NewServer(New(Config{}, &fakeServices{addr: strings.TrimPrefix(backend.URL, "http://")}))
	defer front.Close()

	resp, err := http.Get(front.URL + "/proxy/svc/chunked")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if l, err := br.ReadString('\n'); l != "first\n" {
		t.Fatalf("first part before the service finished: %q %v", l, err)
	}
	close(release)
	if l, _ := br.ReadString('\n'); l != "second\n" {
		t.Fatalf("second part: %q", l)
	}
	resp.Body.Close()

	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seed := string(rune('a' + i))
			n := 1000 + i*7919 // up to ~120 KB: several buffer fills each
			resp, err := http.Get(front.URL + "/proxy/svc/fixed?seed=" + seed + "&n=" + strconv.Itoa(n))
			if err != nil {
				errs <- err.Error()
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if string(b) != strings.Repeat(seed, n) {
				errs <- "request " + seed + ": body differs (" + strconv.Itoa(len(b)) + " bytes)"
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
