package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The service sees the client's own Accept-Encoding: the proxy does not ask for gzip on a
// client's behalf (and then spend its time inflating what the service spent its time
// compressing).
func TestProxyPassesAcceptEncodingAsSent(t *testing.T) {
	got := make(chan string, 2)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Accept-Encoding")
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	front := httptest.NewServer(New(Config{}, &fakeServices{addr: strings.TrimPrefix(backend.URL, "http://")}))
	defer front.Close()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	for _, ae := range []string{"", "br"} {
		req, _ := http.NewRequest("GET", front.URL+"/proxy/svc/", nil)
		if ae != "" {
			req.Header.Set("Accept-Encoding", ae)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if s := <-got; s != ae {
			t.Errorf("client sent Accept-Encoding %q, the service saw %q", ae, s)
		}
	}
}
