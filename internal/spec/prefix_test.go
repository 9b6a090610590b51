package spec

import (
	"errors"
	"strings"
	"testing"
)

func TestDockerfilePrefixMode(t *testing.T) {
	cases := []struct {
		name, dockerfile string
		want             PrefixMode
		err              string // part of the error; "" when none
	}{
		{"absent", "FROM x\nEXPOSE 80\n", PrefixStrip, ""},
		{"keep", "FROM x\nLABEL berth.proxy.prefix=keep\n", PrefixKeep, ""},
		{"strip", "FROM x\nLABEL berth.proxy.prefix=strip\n", PrefixStrip, ""},
		{"quoted among others", "FROM x\nLABEL a=b \"berth.proxy.prefix\"=\"keep\" c=d\n", PrefixKeep, ""},
		{"old form", "FROM x\nLABEL berth.proxy.prefix keep\n", PrefixKeep, ""},
		{"from ENV", "FROM x\nENV MODE=keep\nLABEL berth.proxy.prefix=$MODE\n", PrefixKeep, ""},
		{"from ARG default", "FROM x\nARG MODE=keep\nLABEL berth.proxy.prefix=${MODE}\n", PrefixKeep, ""},
		{"last wins", "FROM x\nLABEL berth.proxy.prefix=keep\nLABEL berth.proxy.prefix=strip\n", PrefixStrip, ""},
		{"builder stage only", "FROM x AS b\nLABEL berth.proxy.prefix=keep\nFROM y\n", PrefixStrip, ""},
		{"inherited from a stage", "FROM x AS b\nLABEL berth.proxy.prefix=keep\nFROM b\n", PrefixKeep, ""},
		{"empty is the default", "FROM x\nLABEL berth.proxy.prefix=\"\"\n", PrefixStrip, ""},
		{"bad value", "FROM x\n\nLABEL berth.proxy.prefix=Keep\n", "", `Dockerfile:3: LABEL berth.proxy.prefix: "Keep": allowed: strip (the default), keep`},
		{"bad expanded", "FROM x\nENV M=rewrite\nLABEL berth.proxy.prefix=$M\n", "", `"rewrite": allowed: strip`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := DockerfilePrefixMode([]byte(c.dockerfile))
			if c.err != "" {
				var ve *ValidationError
				if err == nil || !errors.As(err, &ve) || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want a validation error with %q", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

func TestParsePrefixMode(t *testing.T) {
	for v, want := range map[string]PrefixMode{"": PrefixStrip, "strip": PrefixStrip, "keep": PrefixKeep} {
		if got, err := ParsePrefixMode(v); err != nil || got != want {
			t.Errorf("%q: %q, %v", v, got, err)
		}
	}
	_, err := ParsePrefixMode("both")
	if err == nil || err.Error() != `label berth.proxy.prefix="both": allowed: strip (the default), keep` {
		t.Fatalf("error: %v", err)
	}
}
