// Package registry makes berth the token issuer of a standard image registry (the reference
// distribution registry, Debian's docker-registry) configured with `auth: token`: Docker's
// registry token authentication. A client that the registry answers 401 asks berth's token
// endpoint, with a berth API token as the password, for a short-lived JWT naming what it may
// do on each repository; the registry checks the JWT's signature against the certificate berth
// made with its key (rootcertbundle), its issuer, its audience (the service) and its expiry.
//
// Repositories belong to projects by their first path element: p1/app is project p1's. What
// a token grants is decided by authz (RegistryPull, RegistryPush, RegistryManage), nowhere here.
package registry

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/authz"
)

// Defaults of Config.
const (
	DefaultIssuer = "berth"
	DefaultTTL    = 5 * time.Minute
	// MinTTL and MaxTTL bound a token's lifetime: minutes, never hours.
	MinTTL = time.Minute
	MaxTTL = time.Hour
)

// Config configures the issuer.
type Config struct {
	// Service is the registry's name, the tokens' audience: the registry's auth.token.service
	// (server --registry-service, env BERTH_REGISTRY_SERVICE; default "": no token endpoint).
	Service string
	// Issuer is the tokens' iss: the registry's auth.token.issuer (default "berth").
	Issuer string
	// TTL is how long a token lasts (server --registry-token-ttl; default 5m, 1m to 1h).
	TTL time.Duration
	// KeyDir holds the signing key (registry-token.key, mode 0600) and its self-signed
	// certificate (registry-token.crt, the registry's rootcertbundle): the server's data dir.
	KeyDir string
}

// DefaultConfig is the configuration of a registry named service, keeping its key in dir.
func DefaultConfig(service, dir string) Config {
	return Config{Service: service, Issuer: DefaultIssuer, TTL: DefaultTTL, KeyDir: dir}
}

// Issuer signs registry tokens. It is safe for concurrent use.
type Issuer struct {
	cfg    Config
	signer *Signer
	// Now is the clock (nil: time.Now); tests move it.
	Now func() time.Time
}

// New loads or creates the signing key and certificate in cfg.KeyDir.
func New(cfg Config) (*Issuer, error) {
	if cfg.Service == "" {
		return nil, errors.New("registry: no service name: set --registry-service to the registry's auth.token.service")
	}
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.TTL < MinTTL || cfg.TTL > MaxTTL {
		return nil, fmt.Errorf("registry: token lifetime %v is not allowed; use %v to %v (default %v)", cfg.TTL, MinTTL, MaxTTL, DefaultTTL)
	}
	s, err := LoadOrCreateSigner(cfg.KeyDir)
	if err != nil {
		return nil, err
	}
	return &Issuer{cfg: cfg, signer: s}, nil
}

// Service is the registry's name (the tokens' audience).
func (i *Issuer) Service() string { return i.cfg.Service }

// CertPath is the certificate file the registry's auth.token.rootcertbundle names.
func (i *Issuer) CertPath() string { return i.signer.CertPath }

// Config is the issuer's configuration, defaults filled in.
func (i *Issuer) Config() Config { return i.cfg }

func (i *Issuer) now() time.Time {
	if i.Now != nil {
		return i.Now()
	}
	return time.Now()
}

// Token is what the token endpoint answers (Docker's token authentication): the same JWT as
// token and access_token, its lifetime in seconds and when it was issued. Granted and Refused
// say what of the request was allowed and refused (for the audit log; not sent).
type Token struct {
	Token       string    `json:"token"`
	AccessToken string    `json:"access_token"`
	ExpiresIn   int       `json:"expires_in"`
	IssuedAt    time.Time `json:"issued_at"`

	Granted []Access `json:"-"`
	Refused []Access `json:"-"`
}

// Claims are a registry token's claims (distribution's token.ClaimSet): aud is one string,
// as every registry version reads it.
type Claims struct {
	Issuer    string    `json:"iss"`
	Subject   string    `json:"sub"`
	Audience  string    `json:"aud"`
	ExpiresAt int64     `json:"exp"`
	NotBefore int64     `json:"nbf"`
	IssuedAt  int64     `json:"iat"`
	ID        string    `json:"jti"`
	Access    []*Access `json:"access"`
}

var _ jwt.Claims = Claims{}

func numericDate(s int64) (*jwt.NumericDate, error) { return jwt.NewNumericDate(time.Unix(s, 0)), nil }

// GetExpirationTime implements jwt.Claims.
func (c Claims) GetExpirationTime() (*jwt.NumericDate, error) { return numericDate(c.ExpiresAt) }

// GetNotBefore implements jwt.Claims.
func (c Claims) GetNotBefore() (*jwt.NumericDate, error) { return numericDate(c.NotBefore) }

// GetIssuedAt implements jwt.Claims.
func (c Claims) GetIssuedAt() (*jwt.NumericDate, error) { return numericDate(c.IssuedAt) }

// GetAudience implements jwt.Claims.
func (c Claims) GetAudience() (jwt.ClaimStrings, error) { return jwt.ClaimStrings{c.Audience}, nil }

// GetIssuer implements jwt.Claims.
func (c Claims) GetIssuer() (string, error) { return c.Issuer, nil }

// GetSubject implements jwt.Claims.
func (c Claims) GetSubject() (string, error) { return c.Subject, nil }

// Issue makes a token for p over the requested scopes (each "repository:<name>:<actions>",
// several in one string separated by spaces). What is not granted is left out of the token's
// access list, which may be empty (docker login asks for no scope): the registry then refuses
// what the client tries. A malformed scope is a *ScopeError.
func (i *Issuer) Issue(p auth.Principal, scopes []string) (Token, error) {
	var reqs []Access
	for _, s := range scopes {
		for _, one := range strings.Fields(s) {
			a, err := ParseScope(one)
			if err != nil {
				return Token{}, err
			}
			reqs = append(reqs, a)
		}
	}
	t := Token{}
	access := []*Access{}
	for _, req := range reqs {
		granted, refused := Grant(p, req)
		if len(granted.Actions) > 0 {
			access = appendAccess(access, granted)
			t.Granted = append(t.Granted, granted)
		}
		if len(refused.Actions) > 0 {
			t.Refused = append(t.Refused, refused)
		}
	}
	now := i.now().Truncate(time.Second)
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return Token{}, fmt.Errorf("registry token id: %w", err)
	}
	c := Claims{Issuer: i.cfg.Issuer, Subject: p.Name, Audience: i.cfg.Service, IssuedAt: now.Unix(), NotBefore: now.Unix(),
		ExpiresAt: now.Add(i.cfg.TTL).Unix(), ID: hex.EncodeToString(jti), Access: access}
	signed, err := i.signer.Sign(c)
	if err != nil {
		return Token{}, err
	}
	t.Token, t.AccessToken, t.ExpiresIn, t.IssuedAt = signed, signed, int(i.cfg.TTL/time.Second), now.UTC()
	return t, nil
}

// appendAccess adds a grant, merging it with an earlier one on the same resource (a client
// may ask for pull and push in two scopes).
func appendAccess(list []*Access, a Access) []*Access {
	for _, x := range list {
		if x.Type == a.Type && x.Name == a.Name {
			for _, act := range a.Actions {
				if !containsString(x.Actions, act) {
					x.Actions = append(x.Actions, act)
				}
			}
			return list
		}
	}
	return append(list, &a)
}

// Grant splits a requested access into what authz lets p do and what it refuses. A
// repository's project is its first path element; pull needs RegistryPull, push
// RegistryPush, anything else (delete, *) and any other resource type (registry:catalog:*)
// RegistryManage.
func Grant(p auth.Principal, req Access) (granted, refused Access) {
	granted = Access{Type: req.Type, Class: req.Class, Name: req.Name, Actions: []string{}}
	refused = Access{Type: req.Type, Class: req.Class, Name: req.Name}
	res := authz.Resource{Kind: "repository", ID: req.Name, Project: "-"} // "-": no project's
	if req.Type == "repository" {
		if project, _, ok := strings.Cut(req.Name, "/"); ok && project != "" {
			res.Project = project
		}
	} else {
		res.Kind = req.Type
	}
	for _, act := range req.Actions {
		a := authz.RegistryManage
		if req.Type == "repository" {
			switch act {
			case "pull":
				a = authz.RegistryPull
			case "push":
				a = authz.RegistryPush
			}
		}
		if authz.Can(p, a, res) == nil {
			if !containsString(granted.Actions, act) {
				granted.Actions = append(granted.Actions, act)
			}
		} else {
			refused.Actions = append(refused.Actions, act)
		}
	}
	return granted, refused
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
