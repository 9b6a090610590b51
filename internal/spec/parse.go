package spec

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"gopkg.in/yaml.v3"
)

//go:embed block.schema.json
var blockSchemaJSON []byte

// BlockSchema returns the JSON schema blocks are validated against.
func BlockSchema() []byte { return append([]byte(nil), blockSchemaJSON...) }

var (
	schemaOnce sync.Once
	schema     *jsonschema.Schema
	schemaErr  error
)

func blockSchema() (*jsonschema.Schema, error) {
	schemaOnce.Do(func() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(blockSchemaJSON))
		if err != nil {
			schemaErr = err
			return
		}
		c := jsonschema.NewCompiler()
		if err := c.AddResource("block.schema.json", doc); err != nil {
			schemaErr = err
			return
		}
		schema, schemaErr = c.Compile("block.schema.json")
	})
	return schema, schemaErr
}

// Problem is one thing wrong with a spec.
type Problem struct {
	Field   string `json:"field"`          // dotted path: "limits.memory", "mounts[0].target"
	Line    int    `json:"line,omitempty"` // 0 when unknown
	Message string `json:"message"`
}

// ValidationError lists everything wrong with a spec.
type ValidationError struct {
	File     string
	Problems []Problem
}

func (e *ValidationError) Error() string {
	var sb strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			sb.WriteString("\n")
		}
		if e.File != "" {
			sb.WriteString(e.File)
			if p.Line > 0 {
				sb.WriteString(":" + strconv.Itoa(p.Line))
			}
			sb.WriteString(": ")
		} else if p.Line > 0 {
			sb.WriteString("line " + strconv.Itoa(p.Line) + ": ")
		}
		if p.Field != "" {
			sb.WriteString(p.Field + ": ")
		}
		sb.WriteString(p.Message)
	}
	return sb.String()
}

var (
	yamlLine = regexp.MustCompile(`line (\d+)`)
	reDupKey = regexp.MustCompile(`mapping key "([^"]*)" already defined`)
)

// ParseBlock parses a block spec (YAML, or JSON as YAML), validates it against the schema and
// the rules of Validate, and fills defaults (mount mode ro, network none).
func ParseBlock(data []byte, filename string) (*Block, error) {
	verr := &ValidationError{File: filename}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 0
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		verr.Problems = append(verr.Problems, Problem{Line: line, Message: "not valid YAML: " + msg})
		return nil, verr
	}
	if len(doc.Content) == 0 {
		verr.Problems = append(verr.Problems, Problem{Message: "the spec is empty (a block needs at least name and language)"})
		return nil, verr
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		verr.Problems = append(verr.Problems, Problem{Line: root.Line, Message: "a block spec is a mapping of fields (name, language, ...)"})
		return nil, verr
	}
	if p := checkKeys(root, ""); len(p) > 0 {
		verr.Problems = p
		return nil, verr
	}
	var generic any
	if err := root.Decode(&generic); err != nil {
		msg := strings.ReplaceAll(strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n"), "\n", "; ")
		p := Problem{Line: root.Line, Message: strings.TrimSpace(msg)}
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
		}
		if m := reDupKey.FindStringSubmatch(msg); m != nil {
			p.Field, p.Message = m[1], "is given twice"
		}
		verr.Problems = append(verr.Problems, p)
		return nil, verr
	}
	raw, err := json.Marshal(generic)
	if err != nil {
		verr.Problems = append(verr.Problems, Problem{Line: root.Line, Message: "values must be plain YAML (strings, numbers, lists, mappings): " + err.Error()})
		return nil, verr
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		verr.Problems = append(verr.Problems, Problem{Message: err.Error()})
		return nil, verr
	}
	sch, err := blockSchema()
	if err != nil {
		return nil, fmt.Errorf("block schema: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return nil, err
		}
		verr.Problems = schemaProblems(ve, root)
		return nil, verr
	}
	if p := checkUnits(generic, root); len(p) > 0 {
		verr.Problems = p
		return nil, verr
	}
	var b Block
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&b); err != nil {
		field, msg := decodeProblem(err)
		verr.Problems = append(verr.Problems, Problem{Field: field, Line: lineOf(root, field), Message: msg})
		return nil, verr
	}
	b.defaults()
	if err := b.Validate(); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			for _, p := range ve.Problems {
				p.Line = lineOf(root, p.Field)
				verr.Problems = append(verr.Problems, p)
			}
			return nil, verr
		}
		return nil, err
	}
	return &b, nil
}

// defaults fills what the spec may leave out.
func (b *Block) defaults() {
	if b.Network == "" {
		b.Network = "none"
	}
	for i := range b.Mounts {
		if b.Mounts[i].Mode == "" {
			b.Mounts[i].Mode = "ro"
		}
	}
}

// LoadBlock reads a spec file and the script it names (relative to the spec's folder).
func LoadBlock(p string) (*Block, map[string][]byte, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, nil, fmt.Errorf("read spec: %w", err)
	}
	b, err := ParseBlock(data, p)
	if err != nil {
		return nil, nil, err
	}
	files := map[string][]byte{}
	if b.Script != "" {
		sp := filepath.Join(filepath.Dir(p), filepath.FromSlash(b.Script))
		content, err := os.ReadFile(sp)
		if err != nil {
			return nil, nil, &ValidationError{File: p, Problems: []Problem{{Field: "script", Message: fmt.Sprintf("cannot read the script %s: %v", sp, errors.Unwrap(err))}}}
		}
		files[b.Script] = content
	}
	return b, files, nil
}

// checkKeys refuses non-string mapping keys anywhere, naming where.
func checkKeys(n *yaml.Node, at string) []Problem {
	var out []Problem
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || (k.Tag != "!!str" && k.Tag != "") {
				out = append(out, Problem{Field: at, Line: k.Line, Message: fmt.Sprintf("key %q must be a string", k.Value)})
				continue
			}
			out = append(out, checkKeys(n.Content[i+1], join(at, k.Value))...)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			out = append(out, checkKeys(c, fmt.Sprintf("%s[%d]", at, i))...)
		}
	}
	// Aliases are checked where their anchor is defined (following them could loop).
	return out
}

func join(at, key string) string {
	if at == "" {
		return key
	}
	return at + "." + key
}

// pointerToField turns "/mounts/0/target" into "mounts[0].target".
func pointerToField(ptr string) string {
	if ptr == "" || ptr == "/" {
		return ""
	}
	var sb strings.Builder
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		if _, err := strconv.Atoi(tok); err == nil {
			sb.WriteString("[" + tok + "]")
			continue
		}
		if sb.Len() > 0 {
			sb.WriteString(".")
		}
		sb.WriteString(tok)
	}
	return sb.String()
}

// fieldTokens splits "mounts[0].target" into ["mounts", "0", "target"].
func fieldTokens(field string) []string {
	var out []string
	for _, part := range strings.Split(field, ".") {
		for part != "" {
			i := strings.IndexByte(part, '[')
			if i < 0 {
				out = append(out, part)
				break
			}
			if i > 0 {
				out = append(out, part[:i])
			}
			j := strings.IndexByte(part, ']')
			if j < i {
				break
			}
			out = append(out, part[i+1:j])
			part = part[j+1:]
		}
	}
	return out
}

// lineOf finds the line of a field in the YAML (the closest existing parent when absent).
func lineOf(root *yaml.Node, field string) int {
	n := root
	line := root.Line
	for _, tok := range fieldTokens(field) {
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		switch n.Kind {
		case yaml.MappingNode:
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == tok {
					line = n.Content[i].Line
					n = n.Content[i+1]
					found = true
					break
				}
			}
			if !found {
				return line
			}
		case yaml.SequenceNode:
			idx, err := strconv.Atoi(tok)
			if err != nil || idx < 0 || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		default:
			return line
		}
	}
	return line
}

var allowedKeys = map[string][]string{
	"":         {"name", "language", "script", "code", "dependencies", "system_packages", "image", "install_api_library", "mounts", "limits", "network", "env", "parameters"},
	"mounts[]": {"source", "target", "mode"},
	"limits":   {"cpu", "memory", "pids", "shm_size", "gpu", "timeout", "disk"},
	"env.*":    {"value", "secret"},
}

// schemaProblems turns the schema's errors into plain problems naming the field.
func schemaProblems(ve *jsonschema.ValidationError, root *yaml.Node) []Problem {
	var out []Problem
	seen := map[string]bool{}
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			// For oneOf, the most specific explanation is enough.
			if _, ok := e.ErrorKind.(*kind.OneOf); ok {
				field := pointerToField("/" + strings.Join(e.InstanceLocation, "/"))
				add(&out, seen, root, field, "must be a string, number or boolean, or {value: ..., secret: true}")
				return
			}
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		field := pointerToField("/" + strings.Join(e.InstanceLocation, "/"))
		switch k := e.ErrorKind.(type) {
		case *kind.AdditionalProperties:
			for _, p := range k.Properties {
				f := join(field, p)
				add(&out, seen, root, f, "unknown field"+allowedHint(field))
			}
		case *kind.Required:
			for _, p := range k.Missing {
				add(&out, seen, root, join(field, p), "is required")
			}
		case *kind.Type:
			add(&out, seen, root, field, fmt.Sprintf("must be %s (got %s)", strings.Join(k.Want, " or "), k.Got))
		default:
			add(&out, seen, root, field, e.ErrorKind.LocalizedString(printer))
		}
	}
	walk(ve)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

func add(out *[]Problem, seen map[string]bool, root *yaml.Node, field, msg string) {
	if seen[field+msg] {
		return
	}
	seen[field+msg] = true
	*out = append(*out, Problem{Field: field, Line: lineOf(root, field), Message: msg})
}

func allowedHint(parent string) string {
	key := parent
	if strings.HasPrefix(parent, "mounts[") {
		key = "mounts[]"
	} else if strings.HasPrefix(parent, "env.") {
		key = "env.*"
	}
	if keys, ok := allowedKeys[key]; ok {
		return " (allowed: " + strings.Join(keys, ", ") + ")"
	}
	return ""
}

// decodeProblem names the field of a JSON decoding error (a bad size or duration).
func decodeProblem(err error) (string, string) {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		return ute.Field, fmt.Sprintf("must be %s", ute.Type)
	}
	return "", err.Error()
}

// checkUnits checks sizes and durations written as strings, naming the field.
func checkUnits(generic any, root *yaml.Node) []Problem {
	m, _ := generic.(map[string]any)
	lm, _ := m["limits"].(map[string]any)
	var out []Problem
	for _, f := range []string{"memory", "shm_size", "disk"} {
		if s, ok := lm[f].(string); ok {
			if _, err := ParseByteSize(s); err != nil {
				out = append(out, Problem{Field: "limits." + f, Line: lineOf(root, "limits."+f), Message: err.Error()})
			}
		}
		if n, ok := lm[f].(int); ok && n < 0 {
			out = append(out, Problem{Field: "limits." + f, Line: lineOf(root, "limits."+f), Message: "must not be negative"})
		}
	}
	if s, ok := lm["timeout"].(string); ok {
		if _, err := ParseDuration(s); err != nil {
			out = append(out, Problem{Field: "limits.timeout", Line: lineOf(root, "limits.timeout"), Message: err.Error()})
		}
	}
	return out
}

// printer renders the schema library's messages.
var printer = message.NewPrinter(language.English)
