// Package proxy is berth's HTTP and WebSocket reverse proxy in front of services:
// /proxy/<service>/<path> is forwarded to the service's container on berth's own network,
// starting the service first when it is not running. The upstream lookup answers from memory;
// a cold start happens beside it and concurrent requests wait on the same start.
package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// Services is what the proxy needs of the service manager.
type Services interface {
	Exists(ctx context.Context, name string) bool
	Addr(name string) string
	Ensure(ctx context.Context, name string) (string, error)
	Track(name string) (done func())
}

// StartFailure is what a failed start tells the caller.
type StartFailure interface {
	error
	Tail() string
}

// Config configures the proxy.
type Config struct {
	// Prefix is the path the proxy serves under (default /proxy/).
	Prefix string
	// RequestTimeout bounds a plain request (server --proxy-timeout; default 300 s). WebSocket
	// and streaming responses last as long as they are active.
	RequestTimeout time.Duration
	// Authorize, if set, is asked before a request is forwarded (nil error: allowed).
	Authorize func(r *http.Request, service string) error
	Log       *slog.Logger
}

type ctxKey struct{}

// Proxy is an http.Handler.
type Proxy struct {
	cfg  Config
	svcs Services
	rp   *httputil.ReverseProxy
}

// New makes the proxy.
func New(cfg Config, svcs Services) *Proxy {
	if cfg.Prefix == "" {
		cfg.Prefix = "/proxy/"
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 300 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	p := &Proxy{cfg: cfg, svcs: svcs}
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
		// The client's Accept-Encoding goes through as sent; the transport asks for no gzip
		// of its own.
		DisableCompression: true,
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			t := pr.In.Context().Value(ctxKey{}).(target)
			pr.SetURL(&url.URL{Scheme: "http", Host: t.addr})
			pr.Out.URL.Path = t.path
			pr.Out.URL.RawPath = ""
			pr.Out.Host = t.service
			pr.SetXForwarded()
			pr.Out.Header.Set("X-Forwarded-Prefix", cfg.Prefix+t.service)
			// The caller's berth token is for berth, not for the service.
			pr.Out.Header.Del("Authorization")
		},
		Transport: transport,
		// 0: a response of known length is written in one go. ReverseProxy itself streams every
		// write of event streams and of responses of unknown length (chunked); -1 here would
		// also flush each fixed-length response's head on a goroutine of its own, a second
		// write per request.
		FlushInterval: 0,
		BufferPool:    newBufferPool(),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			writeError(w, http.StatusBadGateway, "bad_gateway", fmt.Sprintf("the service did not answer: %v", err), "")
		},
	}
	return p
}

type target struct {
	service, addr, path string
}

// ServeHTTP forwards /proxy/<service>/<path>.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, p.cfg.Prefix)
	name, path, _ := strings.Cut(rest, "/")
	path = "/" + path
	if name == "" || !p.svcs.Exists(r.Context(), name) {
		writeError(w, http.StatusNotFound, "not_found", "no service "+name, "service")
		return
	}
	if p.cfg.Authorize != nil {
		if err := p.cfg.Authorize(r, name); err != nil {
			writeError(w, http.StatusForbidden, "forbidden", err.Error(), "")
			return
		}
	}
	done := p.svcs.Track(name)
	defer done()
	addr := p.svcs.Addr(name)
	if addr == "" {
		var err error
		addr, err = p.svcs.Ensure(r.Context(), name)
		if err != nil {
			if r.Context().Err() != nil {
				return
			}
			var sf StartFailure
			tail := ""
			if errors.As(err, &sf) {
				tail = sf.Tail()
			}
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": map[string]any{
				"code": "service_unavailable", "message": fmt.Sprintf("service %s could not start: %v", name, err), "log_tail": tail}})
			return
		}
	}
	ctx := context.WithValue(r.Context(), ctxKey{}, target{service: name, addr: addr, path: path})
	if !isUpgrade(r) && !acceptsStream(r) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.RequestTimeout)
		defer cancel()
	}
	p.rp.ServeHTTP(w, r.WithContext(ctx))
}

func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Connection"), "upgrade") || r.Header.Get("Upgrade") != "" ||
		strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade")
}

func acceptsStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg, field string) {
	e := map[string]string{"code": code, "message": msg}
	if field != "" {
		e["field"] = field
	}
	writeJSON(w, status, map[string]any{"error": e})
}
