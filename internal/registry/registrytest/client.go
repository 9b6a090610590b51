package registrytest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client speaks the registry API v2 over plain HTTP, with Docker's token flow: a request the
// registry answers 401 with a Bearer challenge is sent again with a token from the challenge's
// realm, asked for with HTTP Basic auth (User, Password), as the docker client does.
type Client struct {
	// URL is the registry, http://127.0.0.1:<port>.
	URL string
	// User and Password are sent to the token endpoint (Password: a berth API token).
	User, Password string
	// Bearer, when set, is sent as the registry token as it is, and no token is asked for (to
	// present a forged or expired one).
	Bearer string
	// HTTP is the client (nil: one with a 30 s timeout).
	HTTP *http.Client
	// Tokens are the JWTs the token endpoint answered, in order.
	Tokens []TokenResponse
}

// TokenResponse is the token endpoint's answer.
type TokenResponse struct {
	Token       string    `json:"token"`
	AccessToken string    `json:"access_token"`
	ExpiresIn   int       `json:"expires_in"`
	IssuedAt    time.Time `json:"issued_at"`
}

// StatusError is an answer with an unexpected status.
type StatusError struct {
	Op     string
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: %d %s", e.Op, e.Status, strings.TrimSpace(e.Body))
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// Challenge is a registry's WWW-Authenticate: Bearer realm=...,service=...,scope=...
type Challenge struct {
	Realm, Service, Scope string
}

// ParseChallenge reads a Bearer challenge.
func ParseChallenge(h string) (Challenge, error) {
	scheme, params, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Challenge{}, fmt.Errorf("not a Bearer challenge: %q", h)
	}
	var ch Challenge
	for params != "" {
		params = strings.TrimLeft(params, " ,")
		k, rest, ok := strings.Cut(params, "=")
		if !ok {
			break
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`)
			if end < 0 {
				return Challenge{}, fmt.Errorf("unterminated value in %q", h)
			}
			v, params = rest[1:1+end], rest[2+end:]
		} else {
			v, params, _ = strings.Cut(rest, ",")
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "realm":
			ch.Realm = v
		case "service":
			ch.Service = v
		case "scope":
			ch.Scope = v
		}
	}
	if ch.Realm == "" {
		return Challenge{}, fmt.Errorf("no realm in %q", h)
	}
	return ch, nil
}

// Token asks realm for a token for service and scopes, with Basic auth: the JWT, or a
// *StatusError with the endpoint's status.
func (c *Client) Token(realm, service string, scopes ...string) (TokenResponse, error) {
	u, err := url.Parse(realm)
	if err != nil {
		return TokenResponse{}, err
	}
	q := u.Query()
	q.Set("service", service)
	for _, s := range scopes {
		q.Add("scope", s)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return TokenResponse{}, err
	}
	req.SetBasicAuth(c.User, c.Password)
	resp, err := c.http().Do(req)
	if err != nil {
		return TokenResponse{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return TokenResponse{}, &StatusError{Op: "token " + strings.Join(scopes, " "), Status: resp.StatusCode, Body: string(b)}
	}
	var t TokenResponse
	if err := json.Unmarshal(b, &t); err != nil {
		return TokenResponse{}, fmt.Errorf("token answer: %w: %s", err, b)
	}
	if t.Token == "" {
		t.Token = t.AccessToken
	}
	c.Tokens = append(c.Tokens, t)
	return t, nil
}

// Do sends a request to the registry (path from /v2/ on, or an absolute upload location),
// going through the token flow on a 401. It returns the final answer, its body read.
func (c *Client) Do(method, path string, hdr http.Header, body []byte) (*http.Response, []byte, error) {
	send := func(bearer string) (*http.Response, []byte, error) {
		target := path
		if !strings.HasPrefix(path, "http://") && !strings.HasPrefix(path, "https://") {
			target = c.URL + path
		}
		req, err := http.NewRequest(method, target, bytes.NewReader(body))
		if err != nil {
			return nil, nil, err
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		if body != nil {
			req.ContentLength = int64(len(body))
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := c.http().Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		return resp, b, err
	}
	if c.Bearer != "" {
		return send(c.Bearer)
	}
	resp, b, err := send("")
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, b, err
	}
	ch, err := ParseChallenge(resp.Header.Get("WWW-Authenticate"))
	if err != nil {
		return resp, b, err
	}
	var scopes []string
	if ch.Scope != "" {
		scopes = strings.Fields(ch.Scope)
	}
	t, err := c.Token(ch.Realm, ch.Service, scopes...)
	if err != nil {
		return resp, b, err
	}
	return send(t.Token)
}

// Digest is the sha256 digest of b.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// PushBlob uploads b to repo (POST an upload, PUT it with its digest) and returns its digest.
func (c *Client) PushBlob(repo string, b []byte) (string, error) {
	d := Digest(b)
	op := "push blob " + d + " to " + repo
	resp, body, err := c.Do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if resp.StatusCode != http.StatusAccepted {
		return "", &StatusError{Op: op, Status: resp.StatusCode, Body: string(body)}
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		return "", fmt.Errorf("%s: upload location: %w", op, err)
	}
	q := loc.Query()
	q.Set("digest", d)
	loc.RawQuery = q.Encode()
	resp, body, err = c.Do(http.MethodPut, loc.String(), http.Header{"Content-Type": {"application/octet-stream"}}, b)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if resp.StatusCode != http.StatusCreated {
		return "", &StatusError{Op: op, Status: resp.StatusCode, Body: string(body)}
	}
	return d, nil
}

// PutManifest stores a manifest under repo:ref and returns the digest the registry gives it.
func (c *Client) PutManifest(repo, ref, mediaType string, b []byte) (string, error) {
	op := "put manifest " + repo + ":" + ref
	resp, body, err := c.Do(http.MethodPut, "/v2/"+repo+"/manifests/"+ref, http.Header{"Content-Type": {mediaType}}, b)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if resp.StatusCode != http.StatusCreated {
		return "", &StatusError{Op: op, Status: resp.StatusCode, Body: string(body)}
	}
	return resp.Header.Get("Docker-Content-Digest"), nil
}

// GetManifest fetches repo:ref (a tag or a digest), asking for mediaType.
func (c *Client) GetManifest(repo, ref, mediaType string) ([]byte, string, error) {
	op := "get manifest " + repo + ":" + ref
	resp, body, err := c.Do(http.MethodGet, "/v2/"+repo+"/manifests/"+ref, http.Header{"Accept": {mediaType}}, nil)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", op, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", &StatusError{Op: op, Status: resp.StatusCode, Body: string(body)}
	}
	return body, resp.Header.Get("Docker-Content-Digest"), nil
}

// GetBlob fetches a blob of repo by digest.
func (c *Client) GetBlob(repo, digest string) ([]byte, error) {
	op := "get blob " + repo + "@" + digest
	resp, body, err := c.Do(http.MethodGet, "/v2/"+repo+"/blobs/"+digest, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{Op: op, Status: resp.StatusCode, Body: string(body)}
	}
	return body, nil
}

// Media types of a Docker image manifest (schema 2).
const (
	ManifestV2 = "application/vnd.docker.distribution.manifest.v2+json"
	ConfigV1   = "application/vnd.docker.container.image.v1+json"
	LayerGzip  = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// Image is a tiny but complete image: one layer holding /hello.txt, its config and manifest.
type Image struct {
	Layer, Config, Manifest []byte
}

// TinyImage makes an image whose layer holds one file with content.
func TinyImage(content string) Image {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: int64(len(content)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg})
	tw.Write([]byte(content))
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarBuf.Bytes())
	zw.Close()
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": []string{"/hello.txt"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{Digest(tarBuf.Bytes())}},
	})
	man, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": ManifestV2,
		"config": map[string]any{"mediaType": ConfigV1, "size": len(cfg), "digest": Digest(cfg)},
		"layers": []any{map[string]any{"mediaType": LayerGzip, "size": gz.Len(), "digest": Digest(gz.Bytes())}},
	})
	return Image{Layer: gz.Bytes(), Config: cfg, Manifest: man}
}

// PushImage pushes img to repo:tag and returns the manifest's digest.
func (c *Client) PushImage(repo, tag string, img Image) (string, error) {
	for _, b := range [][]byte{img.Layer, img.Config} {
		if _, err := c.PushBlob(repo, b); err != nil {
			return "", err
		}
	}
	return c.PutManifest(repo, tag, ManifestV2, img.Manifest)
}
