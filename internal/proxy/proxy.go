// Package proxy is berth's HTTP and WebSocket reverse proxy in front of services:
// /proxy/<service>/<path> is forwarded to the service's container on berth's own network,
// starting the service first when it is not running. The upstream lookup answers from memory;
// a cold start happens beside it and concurrent requests wait on the same start.
//
// The service sees the client's Host and X-Forwarded-Host, -Proto and -Prefix (/proxy/<name>),
// so its origin checks pass. Its path depends on its prefix mode (the image label
// berth.proxy.prefix): strip (the default) removes /proxy/<name> and rewrites the Location
// headers and Set-Cookie paths the service answers back into it; keep passes the full path and
// rewrites nothing. /proxy/<name> without its slash is redirected (308) to /proxy/<name>/, so
// the browser resolves the page's relative links inside the service.
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

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/authz"
	"github.com/berthproject/berth/internal/spec"
)

// Authorize asks the authorization point whether the request's principal may use the service
// (authz.ServiceUse): the Config.Authorize of a server.
func Authorize(r *http.Request, service, project string) error {
	p, _ := auth.FromContext(r.Context())
	return authz.Can(p, authz.ServiceUse, authz.Resource{Kind: "service", ID: service, Project: project})
}

// noProject is the project of a service that does not exist: no project has this id.
const noProject = "\x00none"

// Services is what the proxy needs of the service manager. Every method answers from memory.
type Services interface {
	// Project is the project a service belongs to; false when no service has that name.
	Project(name string) (string, bool)
	Addr(name string) string
	Ensure(ctx context.Context, name string) (string, error)
	Track(name string) (done func())
	// Mode is the prefix mode of the service's running container, from its image's label
	// berth.proxy.prefix (strip when not known). Answered from memory.
	Mode(name string) spec.PrefixMode
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
	// Authorize, if set, is asked before a request is forwarded, with the service's project
	// (nil error: allowed; an *authz.Denied answers with its status, any other error 403).
	// A name no service has is asked about with a project nobody has, so a refused caller
	// cannot tell a missing service from another project's. Authorize (the function) asks
	// authz; nil forwards every request (tests of the proxy alone).
	Authorize func(r *http.Request, service, project string) error
	Log       *slog.Logger
	// Observer, if set, is told about each request to a service (metrics).
	Observer Observer
}

// Observer is told how each request to a known service went. Its methods are called on the
// request's goroutine and must be quick. The service is always a registered service's name.
type Observer interface {
	// ProxyRequest: a request answered with code after d (for an upgrade, the upgrade's
	// answer: a WebSocket's life is counted by ProxyWebSocket, not here).
	ProxyRequest(service string, code int, d time.Duration)
	// ProxyWebSocket: a WebSocket opened (+1) or closed (-1).
	ProxyWebSocket(service string, delta int)
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
			t := pr.In.Context().Value(ctxKey{}).(*target)
			pr.SetURL(&url.URL{Scheme: "http", Host: t.addr})
			pr.Out.URL.Path, pr.Out.URL.RawPath = t.path, t.rawPath
			// The client's Host: an app comparing Origin with Host (most do, for WebSockets and
			// POSTs) sees the browser's own.
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
			pr.Out.Header.Set("X-Forwarded-Prefix", cfg.Prefix+t.service)
			// The caller's berth token is for berth, not for the service.
			pr.Out.Header.Del("Authorization")
		},
		ModifyResponse: func(resp *http.Response) error {
			t, ok := resp.Request.Context().Value(ctxKey{}).(*target)
			if !ok {
				return nil
			}
			t.status = resp.StatusCode
			if t.onAnswer != nil {
				t.onAnswer(resp.StatusCode)
				t.onAnswer = nil
			}
			if t.mode != spec.PrefixKeep {
				p.rewriteResponse(resp, *t)
			}
			return nil
		},
		// Plain requests are read and written on the request's own goroutine; upgrades and
		// anything else unusual go through net/http's transport.
		Transport: newTransport(transport),
		// 0: a response of known length is written in one go. ReverseProxy itself streams every
		// write of event streams and of responses of unknown length (chunked); -1 here would
		// also flush each fixed-length response's head on a goroutine of its own, a second
		// write per request.
		FlushInterval: 0,
		BufferPool:    newBufferPool(),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if t, ok := r.Context().Value(ctxKey{}).(*target); ok {
				t.status = http.StatusBadGateway
			}
			if errors.Is(err, context.Canceled) {
				return
			}
			writeError(w, http.StatusBadGateway, "bad_gateway", fmt.Sprintf("the service did not answer: %v", err), "")
		},
	}
	return p
}

type target struct {
	service, addr string
	mode          spec.PrefixMode
	path, rawPath string // the path the service is asked for
	clientHost    string // the Host the client asked
	clientScheme  string // http or https, as the client reached berth
	status        int    // the service's answer (ModifyResponse), or 502 (ErrorHandler)
	// onAnswer, when set, is told the service's answer as it comes (upgrades, whose
	// ServeHTTP lasts as long as the connection).
	onAnswer func(code int)
}

// ServeHTTP forwards /proxy/<service>/<path>.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, p.cfg.Prefix)
	name, _, hasSlash := strings.Cut(rest, "/")
	project, known := p.svcs.Project(name)
	if !known {
		project = noProject
	}
	if p.cfg.Authorize != nil {
		if err := p.cfg.Authorize(r, name, project); err != nil {
			var d *authz.Denied
			if errors.As(err, &d) && d.Status == http.StatusNotFound {
				writeError(w, http.StatusNotFound, "not_found", d.Reason, "service")
				return
			}
			writeError(w, http.StatusForbidden, "forbidden", err.Error(), "")
			return
		}
	}
	if name == "" || !known {
		writeError(w, http.StatusNotFound, "not_found", "service "+name+" not found", "service")
		return
	}
	if !hasSlash {
		// /proxy/<name>: the page's relative links would resolve outside the service.
		u := p.cfg.Prefix + name + "/"
		if r.URL.RawQuery != "" {
			u += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", u)
		w.WriteHeader(http.StatusPermanentRedirect)
		return
	}
	done := p.svcs.Track(name)
	defer done()
	var t0 time.Time
	if p.cfg.Observer != nil {
		t0 = time.Now()
	}
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
			if p.cfg.Observer != nil {
				p.cfg.Observer.ProxyRequest(name, http.StatusServiceUnavailable, time.Since(t0))
			}
			return
		}
	}
	t := &target{service: name, addr: addr, mode: p.svcs.Mode(name), clientHost: r.Host, clientScheme: "http"}
	if r.TLS != nil {
		t.clientScheme = "https"
	}
	if t.mode == spec.PrefixKeep {
		t.path, t.rawPath = r.URL.Path, r.URL.RawPath
	} else {
		// The name is [a-z0-9-]: its escaped form is itself.
		strip := p.cfg.Prefix + name
		t.path = strings.TrimPrefix(r.URL.Path, strip)
		if r.URL.RawPath != "" {
			t.rawPath = strings.TrimPrefix(r.URL.RawPath, strip)
		}
	}
	ctx := context.WithValue(r.Context(), ctxKey{}, t)
	upgrade := isUpgrade(r)
	if !upgrade && !acceptsStream(r) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.RequestTimeout)
		defer cancel()
	}
	if p.cfg.Observer == nil {
		p.rp.ServeHTTP(w, r.WithContext(ctx))
		return
	}
	if upgrade {
		p.serveUpgrade(w, r.WithContext(ctx), t, t0)
		return
	}
	p.rp.ServeHTTP(w, r.WithContext(ctx))
	p.cfg.Observer.ProxyRequest(name, t.status, time.Since(t0))
}

// serveUpgrade forwards an upgrade, telling the observer of its answer as soon as it is known
// and, when the service switched protocols, of the WebSocket's opening and its end.
func (p *Proxy) serveUpgrade(w http.ResponseWriter, r *http.Request, t *target, t0 time.Time) {
	answered, open := false, false
	defer func() {
		switch {
		case open:
			p.cfg.Observer.ProxyWebSocket(t.service, -1)
		case !answered:
			p.cfg.Observer.ProxyRequest(t.service, t.status, time.Since(t0))
		}
	}()
	t.onAnswer = func(code int) {
		answered = true
		p.cfg.Observer.ProxyRequest(t.service, code, time.Since(t0))
		if code == http.StatusSwitchingProtocols {
			open = true
			p.cfg.Observer.ProxyWebSocket(t.service, +1)
		}
	}
	p.rp.ServeHTTP(w, r)
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
