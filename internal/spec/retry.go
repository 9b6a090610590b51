package spec

import (
	"fmt"
	"strings"
	"time"
)

// Retry says when a failed job runs again: when its reason is one of On, up to Max more
// times, waiting Backoff before the first retry and twice as long before each next one.
type Retry struct {
	// Max is how many times a failed attempt is run again (1 to MaxRetries).
	Max int `json:"max" yaml:"max"`
	// Backoff is the wait before the first retry ("10s", "1m" or seconds; default 1s), doubled
	// for each next one and capped at MaxBackoff.
	Backoff Duration `json:"backoff,omitempty" yaml:"backoff,omitempty"`
	// On are the failure reasons that are retried (default: all of RetryReasons).
	On []string `json:"on,omitempty" yaml:"on,omitempty"`
}

// Retry limits and the reasons a retry may be asked for. A user_error (the script exited 1)
// fails the same way again, and oom, disk_limit or cancelled are not passing either.
const (
	MaxRetries     = 10
	MaxBackoff     = Duration(time.Hour)
	DefaultBackoff = Duration(time.Second)
)

// RetryReasons are the reasons `retry.on` may name.
var RetryReasons = []string{"app_error", "internal", "timeout"}

// Retries reports whether a failure for reason is retried.
func (r *Retry) Retries(reason string) bool {
	if r == nil || r.Max <= 0 {
		return false
	}
	on := r.On
	if len(on) == 0 {
		on = RetryReasons
	}
	for _, o := range on {
		if o == reason {
			return true
		}
	}
	return false
}

// Wait is the wait before retry n (1 for the first retry): Backoff doubled n-1 times, at most
// MaxBackoff.
func (r *Retry) Wait(n int) time.Duration {
	d := r.Backoff
	if d <= 0 {
		d = DefaultBackoff
	}
	for i := 1; i < n && d < MaxBackoff; i++ {
		d *= 2
	}
	return time.Duration(min(d, MaxBackoff))
}

// check returns the problems of a retry policy, its fields named under at ("retry").
func (r *Retry) check(at string) []Problem {
	if r == nil {
		return nil
	}
	var ps []Problem
	bad := func(field, format string, args ...any) {
		ps = append(ps, Problem{Field: at + "." + field, Message: fmt.Sprintf(format, args...)})
	}
	if r.Max < 1 || r.Max > MaxRetries {
		bad("max", "%d: the number of retries, from 1 to %d", r.Max, MaxRetries)
	}
	if r.Backoff < 0 || r.Backoff > MaxBackoff {
		bad("backoff", "%s: must be from 0 to %s", time.Duration(r.Backoff), time.Duration(MaxBackoff))
	}
	seen := map[string]bool{}
	for i, o := range r.On {
		f := fmt.Sprintf("on[%d]", i)
		ok := false
		for _, a := range RetryReasons {
			ok = ok || o == a
		}
		switch {
		case o == "user_error":
			bad(f, "user_error is never retried: the script's own failure (exit 1) fails the same way again (allowed: %s)", strings.Join(RetryReasons, ", "))
		case !ok:
			bad(f, "%q is not a reason that can be retried (allowed: %s)", o, strings.Join(RetryReasons, ", "))
		case seen[o]:
			bad(f, "%q is listed twice", o)
		}
		seen[o] = true
	}
	return ps
}
