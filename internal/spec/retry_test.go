package spec

import (
	"strings"
	"testing"
	"time"
)

func TestParseRetry(t *testing.T) {
	b, err := ParseBlock([]byte("name: r\nlanguage: shell\ncode: exit 2\nretry: {max: 3, backoff: 2s, on: [app_error, timeout]}\n"), "b.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := b.Retry
	if r == nil || r.Max != 3 || time.Duration(r.Backoff) != 2*time.Second || len(r.On) != 2 {
		t.Fatalf("retry = %+v", r)
	}
	if !r.Retries("app_error") || r.Retries("internal") || r.Retries("user_error") {
		t.Fatal("Retries follows on")
	}
	if got := []time.Duration{r.Wait(1), r.Wait(2), r.Wait(3)}; got[0] != 2*time.Second || got[1] != 4*time.Second || got[2] != 8*time.Second {
		t.Fatalf("waits = %v, want 2s 4s 8s", got)
	}
	if w := (&Retry{Max: 10, Backoff: Duration(40 * time.Minute)}).Wait(5); w != time.Hour {
		t.Fatalf("wait capped at %v, want 1h", w)
	}
	d := &Retry{Max: 1}
	if !d.Retries("internal") || !d.Retries("timeout") || d.Retries("oom") || d.Wait(1) != time.Second {
		t.Fatal("defaults: on all retryable reasons, 1s backoff")
	}
}

func TestRetryErrorsNameTheField(t *testing.T) {
	cases := []struct{ retry, field, want string }{
		{"{max: 0}", "retry.max", "from 1 to 10"},
		{"{max: 11}", "retry.max", "from 1 to 10"},
		{"{max: 2, on: [user_error]}", "retry.on[0]", "never retried"},
		{"{max: 2, on: [app_error, oops]}", "retry.on[1]", "allowed: app_error, internal, timeout"},
		{"{max: 2, backoff: 2h}", "retry.backoff", "from 0 to 1h0m0s"},
		{"{max: 2, tries: 3}", "retry", "tries"},
	}
	for _, c := range cases {
		_, err := ParseBlock([]byte("name: r\nlanguage: shell\ncode: exit 2\nretry: "+c.retry+"\n"), "b.yaml")
		ve, ok := err.(*ValidationError)
		if !ok {
			t.Errorf("%s: err = %v, want a validation error", c.retry, err)
			continue
		}
		found := false
		for _, p := range ve.Problems {
			found = found || (strings.HasPrefix(p.Field, c.field) && strings.Contains(p.Field+" "+p.Message, c.want))
		}
		if !found {
			t.Errorf("%s: problems %+v, want %s naming %q", c.retry, ve.Problems, c.field, c.want)
		}
	}
}

func TestComponentConfigRetry(t *testing.T) {
	comp := &Component{ID: "c1"}
	c, err := ParseComponentConfig([]byte(`{"id":"x","component":"c1","storage":{},"retry":{"max":2,"backoff":"5s","on":["internal"]}}`), "c.json", comp)
	if err != nil {
		t.Fatal(err)
	}
	if c.Retry == nil || c.Retry.Max != 2 || time.Duration(c.Retry.Backoff) != 5*time.Second || !c.Retry.Retries("internal") {
		t.Fatalf("retry = %+v", c.Retry)
	}
	_, err = ParseComponentConfig([]byte(`{"id":"x","component":"c1","storage":{},"retry":{"max":2,"on":["user_error"]}}`), "c.json", comp)
	if err == nil || !strings.Contains(err.Error(), "retry.on[0]") {
		t.Fatalf("err = %v, want one naming retry.on[0]", err)
	}
}
