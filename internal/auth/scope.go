package auth

import (
	"fmt"
	"strings"
)

// ScopeItem is one narrowing of a token: Kind is service, bucket or component; ID names it;
// Access is read or write for a bucket.
type ScopeItem struct {
	Kind, ID, Access string
}

// ParseScope reads a token's scope: comma-separated service:<name>, bucket:<id>:read,
// bucket:<id>:write and component:<id>. "" is no narrowing.
func ParseScope(scope string) ([]ScopeItem, error) {
	if strings.TrimSpace(scope) == "" {
		return nil, nil
	}
	var out []ScopeItem
	hasService := false
	for _, part := range strings.Split(scope, ",") {
		part = strings.TrimSpace(part)
		kind, rest, ok := strings.Cut(part, ":")
		if !ok || rest == "" {
			return nil, fmt.Errorf("scope %q: use service:<name>, bucket:<id>:read, bucket:<id>:write or component:<id>", part)
		}
		switch kind {
		case "service", "component":
			if strings.Contains(rest, ":") {
				return nil, fmt.Errorf("scope %q: a %s scope is %s:<id>", part, kind, kind)
			}
			out = append(out, ScopeItem{Kind: kind, ID: rest})
			hasService = hasService || kind == "service"
		case "bucket":
			i := strings.LastIndex(rest, ":")
			if i <= 0 || (rest[i+1:] != "read" && rest[i+1:] != "write") {
				return nil, fmt.Errorf("scope %q: a bucket scope is bucket:<id>:read or bucket:<id>:write", part)
			}
			out = append(out, ScopeItem{Kind: kind, ID: rest[:i], Access: rest[i+1:]})
		default:
			return nil, fmt.Errorf("scope %q: kind %q is not allowed; use service, bucket or component", part, kind)
		}
	}
	if hasService && len(out) > 1 {
		return nil, fmt.Errorf("scope %q: a service scope reaches only that service's proxy and cannot be combined", scope)
	}
	return out, nil
}

// ValidScope checks a token's scope.
func ValidScope(scope string) error {
	_, err := ParseScope(scope)
	return err
}

// Scopes returns the principal's scope items (a stored scope is valid, so errors cannot occur
// for one read from the store; an invalid one narrows to nothing).
func (p Principal) Scopes() []ScopeItem {
	items, err := ParseScope(p.Scope)
	if err != nil {
		return []ScopeItem{{Kind: "invalid"}}
	}
	return items
}
