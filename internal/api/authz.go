package api

import (
	"errors"
	"net/http"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/authz"
)

// can asks the authorization point whether the request's principal may do a on res, and
// writes the refusal when not: it reports whether the handler may go on.
func (s *Server) can(w http.ResponseWriter, r *http.Request, a authz.Action, res authz.Resource) bool {
	p, _ := auth.FromContext(r.Context())
	err := authz.Can(p, a, res)
	if err == nil {
		return true
	}
	s.deny(w, err)
	return false
}

// deny writes an authorization refusal: 404 for what the caller may not know of, 403 for what
// it may know of but not do.
func (s *Server) deny(w http.ResponseWriter, err error) {
	var d *authz.Denied
	if errors.As(err, &d) {
		code := "forbidden"
		if d.Status == http.StatusNotFound {
			code = "not_found"
		}
		writeError(w, d.Status, code, d.Reason, "")
		return
	}
	writeError(w, http.StatusForbidden, "forbidden", err.Error(), "")
}

// principal is the request's principal.
func principal(r *http.Request) auth.Principal {
	p, _ := auth.FromContext(r.Context())
	return p
}
