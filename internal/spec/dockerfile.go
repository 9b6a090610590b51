package spec

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// A Dockerfile is read as Docker's builder reads it (its own parser): line continuations,
// comments and the escape directive; ARG (with defaults and build args) and ENV tracked per
// stage and expanded in $VAR, ${VAR} and ${VAR:-default}; a stage built FROM an earlier stage
// inherits its ENV and EXPOSE. Only the final stage makes the image.

// dfStage is one FROM … of a Dockerfile as far as a service's checks need it.
type dfStage struct {
	name  string   // AS name, lower-cased
	base  string   // FROM's image, expanded
	line  int      // FROM's line
	env   envMap   // ARG and ENV in scope at the end of the stage
	ports []dfPort // EXPOSE, the base stage's first
	// labels are the LABELs set in the stage (or the earlier stage it builds on), expanded,
	// with the line that set each last.
	labels map[string]dfLabel
}

type dfLabel struct {
	value string
	line  int
}

type dfPort struct {
	word string // as written, expanded
	line int
	raw  string // as written
}

type envMap map[string]string

func (e envMap) Get(k string) (string, bool) { v, ok := e[k]; return v, ok }
func (e envMap) Keys() []string {
	ks := make([]string, 0, len(e))
	for k := range e {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func (e envMap) clone() envMap {
	c := make(envMap, len(e))
	for k, v := range e {
		c[k] = v
	}
	return c
}

// parseDockerfile reads the stages of a Dockerfile; buildArgs are the --build-arg values the
// build is given (nil: none).
func parseDockerfile(dockerfile []byte, buildArgs map[string]string) ([]dfStage, error) {
	verr := &ValidationError{File: "Dockerfile"}
	res, err := parser.Parse(bytes.NewReader(dockerfile))
	if err != nil {
		verr.Problems = append(verr.Problems, Problem{Message: "cannot be parsed: " + err.Error()})
		return nil, verr
	}
	lex := shell.NewLex(res.EscapeToken)
	expand := func(word string, env envMap) string {
		out, _, err := lex.ProcessWord(word, env)
		if err != nil {
			return word
		}
		return out
	}
	global := envMap{} // ARGs before the first FROM: for FROM lines, and for ARG NAME inside a stage
	var stages []dfStage
	var cur *dfStage
	for _, n := range res.AST.Children {
		switch strings.ToLower(n.Value) {
		case "from":
			var words []string
			for a := n.Next; a != nil; a = a.Next {
				words = append(words, a.Value)
			}
			if len(words) == 0 {
				continue
			}
			st := dfStage{base: expand(words[0], global), line: n.StartLine, env: envMap{}, labels: map[string]dfLabel{}}
			if len(words) >= 3 && strings.EqualFold(words[1], "as") {
				st.name = strings.ToLower(words[2])
			}
			for _, prev := range stages {
				if prev.name != "" && prev.name == strings.ToLower(st.base) {
					st.env = prev.env.clone()
					st.ports = append(st.ports, prev.ports...)
					for k, v := range prev.labels {
						st.labels[k] = v
					}
				}
			}
			stages = append(stages, st)
			cur = &stages[len(stages)-1]
		case "arg":
			for a := n.Next; a != nil; a = a.Next {
				name, def, hasDef := strings.Cut(a.Value, "=")
				scope := global
				if cur != nil {
					scope = cur.env
				}
				val, ok := buildArgs[name]
				switch {
				case ok:
				case hasDef:
					val, ok = expand(def, scope), true
				case cur != nil:
					val, ok = global[name]
				}
				if !ok {
					if _, set := scope[name]; set {
						continue
					}
				}
				scope[name] = val
			}
		case "env":
			if cur == nil {
				continue
			}
			// key, value, separator, key, value, separator, …
			for k := n.Next; k != nil && k.Next != nil; {
				v := k.Next
				cur.env[k.Value] = expand(v.Value, cur.env)
				if v.Next == nil {
					break
				}
				k = v.Next.Next
			}
		case "label":
			if cur == nil {
				continue
			}
			// key, value, separator, like ENV; keys and values are quoted and expanded as
			// the builder does.
			for k := n.Next; k != nil && k.Next != nil; {
				v := k.Next
				cur.labels[expand(k.Value, cur.env)] = dfLabel{value: expand(v.Value, cur.env), line: n.StartLine}
				if v.Next == nil {
					break
				}
				k = v.Next.Next
			}
		case "expose":
			if cur == nil {
				continue
			}
			for a := n.Next; a != nil; a = a.Next {
				words, err := lex.ProcessWords(a.Value, cur.env)
				if err != nil || len(words) == 0 {
					words = []string{""}
				}
				for _, w := range words {
					cur.ports = append(cur.ports, dfPort{word: w, line: n.StartLine, raw: a.Value})
				}
			}
		}
	}
	return stages, nil
}

// ExposedPort reads the port of a service's Dockerfile: its final stage exposes exactly one
// TCP port. EXPOSE lines of a builder stage do not count.
func ExposedPort(dockerfile []byte) (int, error) {
	return ExposedPortArgs(dockerfile, nil)
}

// ExposedPortArgs is ExposedPort for a build given buildArgs.
func ExposedPortArgs(dockerfile []byte, buildArgs map[string]string) (int, error) {
	stages, err := parseDockerfile(dockerfile, buildArgs)
	if err != nil {
		return 0, err
	}
	verr := &ValidationError{File: "Dockerfile"}
	if len(stages) == 0 {
		verr.Problems = []Problem{{Field: "FROM", Message: "a Dockerfile starts its build with FROM; there is none"}}
		return 0, verr
	}
	final := stages[len(stages)-1]
	var ports []int
	var words []string
	seen := map[int]bool{}
	for _, p := range final.ports {
		n, perr := tcpPort(p.word)
		if perr != "" {
			what := fmt.Sprintf("%q", p.raw)
			if p.word != p.raw {
				what = fmt.Sprintf("%q (%q after expanding ARG and ENV)", p.raw, p.word)
			}
			verr.Problems = append(verr.Problems, Problem{Field: "EXPOSE", Line: p.line, Message: what + " " + perr})
			continue
		}
		if !seen[n] {
			seen[n] = true
			ports = append(ports, n)
			words = append(words, p.word)
		}
	}
	if len(verr.Problems) > 0 {
		return 0, verr
	}
	switch len(ports) {
	case 0:
		msg := "a service's Dockerfile exposes exactly one port; it exposes none"
		if len(stages) > 1 {
			msg += " in its final stage (line " + strconv.Itoa(final.line) + ")"
		}
		verr.Problems = []Problem{{Field: "EXPOSE", Message: msg}}
		return 0, verr
	case 1:
		return ports[0], nil
	default:
		verr.Problems = []Problem{{Field: "EXPOSE", Message: fmt.Sprintf("a service's Dockerfile exposes exactly one port; it exposes %s", strings.Join(words, ", "))}}
		return 0, verr
	}
}

// tcpPort reads "8000" or "8000/tcp"; otherwise it says why not.
func tcpPort(w string) (int, string) {
	if w == "" {
		return 0, "is empty (a variable without a value? give it one with ARG NAME=value or ENV NAME=value in the final stage)"
	}
	p, proto, hasProto := strings.Cut(w, "/")
	if hasProto && !strings.EqualFold(proto, "tcp") {
		return 0, "is not a TCP port (a service is reached over TCP)"
	}
	if strings.Contains(p, "-") {
		return 0, "is a range of ports; a service exposes exactly one"
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return 0, "is not a TCP port (1-65535)"
	}
	return n, ""
}

// BaseImages lists the images a Dockerfile builds from, expanded, in order: the FROM of
// every stage that does not build on an earlier stage (scratch left out).
func BaseImages(dockerfile []byte, buildArgs map[string]string) []string {
	stages, err := parseDockerfile(dockerfile, buildArgs)
	if err != nil {
		return nil
	}
	names := map[string]bool{}
	var out []string
	seen := map[string]bool{}
	for _, st := range stages {
		b := st.base
		if !names[strings.ToLower(b)] && !strings.EqualFold(b, "scratch") && !seen[b] {
			seen[b] = true
			out = append(out, b)
		}
		if st.name != "" {
			names[st.name] = true
		}
	}
	return out
}
