package registry

import (
	"fmt"
	"regexp"
	"strings"
)

// Access is one entry of a token's access claim (distribution's token.ResourceActions), and
// one requested scope.
type Access struct {
	Type    string   `json:"type"`
	Class   string   `json:"class,omitempty"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// String is the scope's text: type[(class)]:name:actions.
func (a Access) String() string {
	t := a.Type
	if a.Class != "" {
		t += "(" + a.Class + ")"
	}
	return t + ":" + a.Name + ":" + strings.Join(a.Actions, ",")
}

// ScopeError is a scope the token endpoint cannot read.
type ScopeError struct {
	Scope, Reason string
}

func (e *ScopeError) Error() string {
	return fmt.Sprintf("scope %q: %s; use repository:<project>/<name>:pull,push", e.Scope, e.Reason)
}

// scopeType is a resource type with an optional class: repository, repository(plugin).
var scopeType = regexp.MustCompile(`^([a-z0-9]+)(?:\(([a-z0-9]+)\))?$`)

// repoName is a repository name as the distribution reference grammar allows it, the
// registry's host left out (the client strips it): lowercase path components joined by '/',
// separators '.', '_', '__' or dashes.
var repoName = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)

var action = regexp.MustCompile(`^(?:[a-z]+|\*)$`)

// ParseScope reads one scope, type:name:actions (Docker's token scope grammar): the name is
// what lies between the first and the last ':' (a repository name has none; another type's
// name may). Actions are comma-separated.
func ParseScope(s string) (Access, error) {
	first := strings.Index(s, ":")
	last := strings.LastIndex(s, ":")
	if first < 0 || first == last {
		return Access{}, &ScopeError{s, "want type:name:actions"}
	}
	typ, name, acts := s[:first], s[first+1:last], s[last+1:]
	m := scopeType.FindStringSubmatch(typ)
	if m == nil {
		return Access{}, &ScopeError{s, fmt.Sprintf("resource type %q is not a type", typ)}
	}
	a := Access{Type: m[1], Class: m[2], Name: name}
	if a.Type == "repository" && (len(name) > 255 || !repoName.MatchString(name)) {
		return Access{}, &ScopeError{s, fmt.Sprintf("repository name %q is not a repository name", name)}
	}
	if name == "" {
		return Access{}, &ScopeError{s, "the name is empty"}
	}
	for _, act := range strings.Split(acts, ",") {
		if !action.MatchString(act) {
			return Access{}, &ScopeError{s, fmt.Sprintf("action %q is not an action", act)}
		}
		if !containsString(a.Actions, act) {
			a.Actions = append(a.Actions, act)
		}
	}
	return a, nil
}
