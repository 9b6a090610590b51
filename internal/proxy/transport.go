package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"time"
)

// transport is the proxy's http.RoundTripper for plain HTTP/1.1 upstreams (the services'
// containers). Unlike http.Transport, which hands each request to a reader and a writer
// goroutine of its connection, it writes the request and reads the response on the caller's
// own goroutine: two wake-ups fewer per request. A request with a body is written from a
// goroutine of its own, so an upstream that answers while it still reads (or echoes as it
// reads) cannot deadlock against us.
//
// Connections are kept per host in a bounded pool of idle ones. A response's connection goes
// back to the pool when its body has been read to the end and neither side asked to close;
// otherwise it is closed. Anything else than a plain HTTP/1.1 exchange (upgrades such as
// WebSocket, https, Expect: 100-continue, request trailers, CONNECT) is handed to fallback,
// which keeps 101 Switching Protocols working for httputil.ReverseProxy.
//
// Safe for concurrent use.
type transport struct {
	fallback    *http.Transport
	dialer      *net.Dialer
	maxIdle     int           // idle connections kept per host
	idleTimeout time.Duration // an idle connection is closed after this

	mu   sync.Mutex
	idle map[string][]*conn // by host:port, most recently used last
}

var _ http.RoundTripper = (*transport)(nil)

// newTransport makes the transport; fallback serves what it does not.
func newTransport(fallback *http.Transport) *transport {
	return &transport{
		fallback:    fallback,
		dialer:      &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
		maxIdle:     128,
		idleTimeout: 90 * time.Second,
		idle:        map[string][]*conn{},
	}
}

// conn is one persistent connection to an upstream.
type conn struct {
	t     *transport
	key   string
	nc    net.Conn
	br    *bufio.Reader
	bw    *bufio.Writer
	timer *time.Timer // closes the connection when idle too long; nil until first idle
	idle  bool        // in t.idle; guarded by t.mu
}

// errBodyClosed is what a read after Close returns.
var errBodyClosed = errors.New("proxy: read on closed response body")

// errProtocol marks a response the transport refuses to interpret.
var errProtocol = errors.New("proxy: unexpected response")

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.handles(req) {
		return t.fallback.RoundTrip(req)
	}
	ctx := req.Context()
	key := hostPort(req.URL.Host)
	hasBody := req.Body != nil && req.Body != http.NoBody
	replayable := !hasBody || req.GetBody != nil
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			closeBody(req)
			return nil, err
		}
		var c *conn
		if attempt == 0 {
			// A request that could not be sent again gets a connection known to be open.
			c = t.getIdle(key, !(replayable && idempotent(req)))
		}
		reused := c != nil
		if c == nil {
			var err error
			if c, err = t.dial(ctx, key); err != nil {
				closeBody(req)
				return nil, err
			}
		}
		resp, err := c.roundTrip(ctx, req, hasBody)
		if err == nil {
			return resp, nil
		}
		var se staleError
		if !errors.As(err, &se) {
			closeBody(req)
			return nil, err
		}
		if !reused || attempt > 0 || !replayable || !idempotent(req) {
			closeBody(req)
			return nil, se.err
		}
		// The upstream closed the idle connection before it read the request: send it again
		// on a new one, as net/http does.
		if hasBody {
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, se.err
			}
			req = shallowWithBody(req, body)
		}
	}
}

// handles says whether the request is a plain HTTP/1.1 exchange this transport serves.
func (t *transport) handles(req *http.Request) bool {
	if req.URL == nil || req.URL.Scheme != "http" || req.URL.Host == "" || req.Method == http.MethodConnect {
		return false
	}
	h := req.Header
	if len(h["Upgrade"]) > 0 || len(h["Expect"]) > 0 || len(req.Trailer) > 0 {
		return false
	}
	for _, v := range h["Connection"] {
		if strings.Contains(strings.ToLower(v), "upgrade") {
			return false
		}
	}
	return true
}

// idempotent is net/http's rule for requests it sends again after a dead connection.
func idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, a := req.Header["Idempotency-Key"]
	_, b := req.Header["X-Idempotency-Key"]
	return a || b
}

func shallowWithBody(req *http.Request, body io.ReadCloser) *http.Request {
	r := *req
	r.Body = body
	return &r
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

func hostPort(host string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), "80")
}

func (t *transport) dial(ctx context.Context, key string) (*conn, error) {
	nc, err := t.dialer.DialContext(ctx, "tcp", key)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("dial %s: %w", key, err)
	}
	return &conn{t: t, key: key, nc: nc, br: bufio.NewReaderSize(nc, 4<<10), bw: bufio.NewWriterSize(nc, 4<<10)}, nil
}

// getIdle takes the most recently used idle connection to key, or nil. With probe, a
// connection the upstream has already closed is skipped.
func (t *transport) getIdle(key string, probe bool) *conn {
	for {
		t.mu.Lock()
		list := t.idle[key]
		if len(list) == 0 {
			t.mu.Unlock()
			return nil
		}
		c := list[len(list)-1]
		list[len(list)-1] = nil
		t.idle[key] = list[:len(list)-1]
		c.idle = false
		t.mu.Unlock()
		c.timer.Stop()
		if probe && !alive(c.nc) {
			c.nc.Close()
			continue
		}
		return c
	}
}

// putIdle keeps c for the next request to its host, or closes it when the pool is full.
func (t *transport) putIdle(c *conn) {
	if c.br.Buffered() > 0 {
		// The upstream sent more than the response: nothing to trust on this connection.
		c.nc.Close()
		return
	}
	t.mu.Lock()
	list := t.idle[c.key]
	if len(list) >= t.maxIdle {
		t.mu.Unlock()
		c.nc.Close()
		return
	}
	t.idle[c.key] = append(list, c)
	c.idle = true
	if c.timer == nil {
		c.timer = time.AfterFunc(t.idleTimeout, c.expire)
	} else {
		c.timer.Reset(t.idleTimeout)
	}
	t.mu.Unlock()
}

// expire closes c if it is still idle.
func (c *conn) expire() {
	t := c.t
	t.mu.Lock()
	if !c.idle {
		t.mu.Unlock()
		return
	}
	c.idle = false
	list := t.idle[c.key]
	if i := slices.Index(list, c); i >= 0 {
		list = slices.Delete(list, i, i+1)
	}
	if len(list) == 0 {
		delete(t.idle, c.key)
	} else {
		t.idle[c.key] = list
	}
	t.mu.Unlock()
	c.nc.Close()
}

// CloseIdleConnections closes the idle connections of this transport and of its fallback.
func (t *transport) CloseIdleConnections() {
	t.mu.Lock()
	var all []*conn
	for k, list := range t.idle {
		for _, c := range list {
			c.idle = false
			all = append(all, c)
		}
		delete(t.idle, k)
	}
	t.mu.Unlock()
	for _, c := range all {
		c.timer.Stop()
		c.nc.Close()
	}
	t.fallback.CloseIdleConnections()
}

// staleError is a failure on a connection before any byte of the response arrived: on a
// reused connection, the upstream probably closed it while it was idle.
type staleError struct{ err error }

func (e staleError) Error() string { return e.err.Error() }
func (e staleError) Unwrap() error { return e.err }

// roundTrip sends req on c and reads the response head. On error c is closed.
func (c *conn) roundTrip(ctx context.Context, req *http.Request, hasBody bool) (*http.Response, error) {
	// Cancellation closes the connection, which unblocks whatever read or write is under way.
	stop := context.AfterFunc(ctx, func() { c.nc.Close() })
	fail := func(err error) (*http.Response, error) {
		stop()
		c.nc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	var written chan error
	if hasBody {
		written = make(chan error, 1)
		go func() {
			err := req.Write(c.bw)
			if err == nil {
				err = c.bw.Flush()
			}
			if err != nil {
				c.nc.Close() // the reader must not wait for an answer to half a request
			}
			written <- err
		}()
	} else {
		err := req.Write(c.bw)
		if err == nil {
			err = c.bw.Flush()
		}
		if err != nil {
			return fail(staleError{fmt.Errorf("write request: %w", err)})
		}
	}
	// The writer of a body is never waited for after a failure: it may be blocked reading the
	// body from a slow client, and it ends by itself on the closed connection.
	if _, err := c.br.Peek(1); err != nil {
		if written != nil {
			select {
			case werr := <-written:
				if werr != nil {
					err = werr
				}
			default:
			}
		}
		return fail(staleError{fmt.Errorf("read response: %w", err)})
	}
	trace := httptrace.ContextClientTrace(ctx)
	for {
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			return fail(fmt.Errorf("read response: %w", err))
		}
		if resp.StatusCode == http.StatusSwitchingProtocols || resp.StatusCode < 100 {
			return fail(fmt.Errorf("%w: status %d to a request that asked no upgrade", errProtocol, resp.StatusCode))
		}
		if resp.StatusCode < 200 {
			// 103 Early Hints and the like: passed on to whoever listens, then the real one.
			if trace != nil && trace.Got1xxResponse != nil {
				if err := trace.Got1xxResponse(resp.StatusCode, textproto.MIMEHeader(resp.Header)); err != nil {
					return fail(err)
				}
			}
			continue
		}
		keep := !resp.Close && !req.Close
		if resp.Body == http.NoBody {
			c.finish(stop, written, keep)
			return resp, nil
		}
		resp.Body = &body{rc: resp.Body, c: c, ctx: ctx, stop: stop, written: written, keep: keep}
		return resp, nil
	}
}

// finish ends c's exchange: back to the pool when keep, the request was written whole and
// cancellation did not close it; closed otherwise.
func (c *conn) finish(stop func() bool, written chan error, keep bool) {
	if !stop() {
		keep = false // the context's end closed it
	}
	if written != nil {
		select {
		case err := <-written:
			keep = keep && err == nil
		default:
			// The writer may not have told yet; an upstream that answered before it read the
			// whole request leaves a rest that cannot be told apart from the next request.
			tm := time.NewTimer(50 * time.Millisecond)
			select {
			case err := <-written:
				keep = keep && err == nil
			case <-tm.C:
				keep = false
			}
			tm.Stop()
		}
	}
	if keep {
		c.t.putIdle(c)
	} else {
		c.nc.Close()
	}
}

// body is a response body on a pooled connection; at its end the connection is given back.
type body struct {
	rc      io.ReadCloser
	c       *conn
	ctx     context.Context
	stop    func() bool
	written chan error
	keep    bool

	mu   sync.Mutex
	done bool
	err  error // returned by reads after done
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.done {
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	b.mu.Unlock()
	n, err := b.rc.Read(p)
	if err == nil {
		return n, nil
	}
	if err == io.EOF {
		b.end(true, io.EOF)
		return n, io.EOF
	}
	if cerr := b.ctx.Err(); cerr != nil {
		err = cerr
	}
	b.end(false, err)
	return n, err
}

// Close ends the body; a connection whose response was not read to its end is closed.
func (b *body) Close() error {
	b.end(false, errBodyClosed)
	return nil
}

func (b *body) end(eof bool, err error) {
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return
	}
	b.done, b.err = true, err
	b.mu.Unlock()
	if eof {
		b.c.finish(b.stop, b.written, b.keep)
		return
	}
	b.stop()
	b.c.nc.Close()
}
