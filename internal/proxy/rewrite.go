package proxy

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// In strip mode the service answers as if it lived at /; what it answers that names its own
// paths is moved back under /proxy/<name> so the browser stays inside the service.

// rewriteResponse rewrites a strip-mode service's Location header and Set-Cookie paths.
func (p *Proxy) rewriteResponse(resp *http.Response, t target) {
	prefix := p.cfg.Prefix + t.service
	if loc := resp.Header.Get("Location"); loc != "" {
		resp.Header.Set("Location", rewriteLocation(loc, prefix, t))
	}
	if cookies := resp.Header.Values("Set-Cookie"); len(cookies) > 0 {
		out := make([]string, len(cookies))
		for i, c := range cookies {
			out[i] = rewriteSetCookie(c, prefix, t)
		}
		resp.Header["Set-Cookie"] = out
	}
}

// underPrefix reports whether path already lies under the prefix (an app that reads
// X-Forwarded-Prefix builds its links with it): it is not prefixed twice.
func underPrefix(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// rewriteLocation moves a Location into the prefix: a path ("/x") becomes "/proxy/<name>/x";
// an absolute URL whose host is the client's keeps its scheme and host and gets the prefixed
// path; one whose host is the upstream (its address or the service's name) gets the client's
// scheme and host. Relative references ("x", "../x", "?q") resolve inside the prefix by
// themselves, and other hosts are not the service's: both are left alone.
func rewriteLocation(loc, prefix string, t target) string {
	u, err := url.Parse(loc)
	if err != nil || u.Opaque != "" {
		return loc
	}
	if u.Scheme == "" && u.Host == "" {
		if !strings.HasPrefix(loc, "/") || underPrefix(u.Path, prefix) {
			return loc
		}
		return prefix + loc
	}
	if u.Host == "" || (u.Scheme != "" && !strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https")) {
		return loc
	}
	switch {
	case sameHost(u, t.clientHost, t.clientScheme):
	case isUpstream(u.Hostname(), t) && (u.Port() == "" || u.Host == t.addr || u.Port() == portOf(t.addr)):
		u.Host = t.clientHost
		if u.Scheme != "" {
			u.Scheme = t.clientScheme
		}
	default:
		return loc
	}
	if underPrefix(u.Path, prefix) {
		return u.String()
	}
	if u.Path == "" {
		u.Path = "/"
	}
	if u.RawPath != "" {
		u.RawPath = prefix + u.RawPath
	}
	u.Path = prefix + u.Path
	return u.String()
}

// sameHost reports whether u names the host the client asked (a default port written or not).
func sameHost(u *url.URL, clientHost, clientScheme string) bool {
	scheme := strings.ToLower(u.Scheme)
	if scheme == "" {
		scheme = clientScheme
	}
	return strings.EqualFold(withPort(u.Host, scheme), withPort(clientHost, clientScheme))
}

func withPort(host, scheme string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	if scheme == "https" {
		return net.JoinHostPort(strings.Trim(host, "[]"), "443")
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), "80")
}

// isUpstream reports whether a host name is the service's own: its name (the host it was
// called by before berth passed the client's Host) or its container's address.
func isUpstream(host string, t target) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" {
		return false
	}
	if host == t.service {
		return true
	}
	h, _, err := net.SplitHostPort(t.addr)
	if err != nil {
		h = t.addr
	}
	return strings.EqualFold(host, h)
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// rewriteSetCookie moves a cookie into the prefix: Path=/p becomes Path=/proxy/<name>/p, a
// cookie without a Path (or with one that is not a path) gets Path=/proxy/<name>/, so one
// service's cookies are not sent to another. A Domain naming the upstream (which the browser
// would refuse) is dropped. The cookie's name and value and every other attribute are kept
// byte for byte: net/http's Cookie cannot write back attributes it does not know, so the
// header is edited attribute by attribute rather than parsed and written again.
func rewriteSetCookie(line, prefix string, t target) string {
	parts := strings.Split(line, ";")
	out := make([]string, 0, len(parts)+1)
	out = append(out, strings.TrimSpace(parts[0]))
	hasPath := false
	for _, a := range parts[1:] {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		k, v, _ := strings.Cut(a, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch strings.ToLower(k) {
		case "path":
			hasPath = true
			switch {
			case underPrefix(v, prefix):
			case strings.HasPrefix(v, "/"):
				a = k + "=" + prefix + v
			default: // not a path: the browser would use the request's folder
				a = k + "=" + prefix + "/"
			}
		case "domain":
			if isUpstream(strings.TrimPrefix(v, "."), t) {
				continue
			}
		}
		out = append(out, a)
	}
	if !hasPath {
		out = append(out, "Path="+prefix+"/")
	}
	return strings.Join(out, "; ")
}
