package cli

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strconv"
	"testing"
)

// exitCodes reads the Exit* constants from root.go, so a new code cannot go undocumented.
func exitCodes(t *testing.T) map[string]int {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "root.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]int{}
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || len(vs.Values) != 1 {
			return true
		}
		lit, ok := vs.Values[0].(*ast.BasicLit)
		if name := vs.Names[0].Name; ok && len(name) > 4 && name[:4] == "Exit" {
			v, _ := strconv.Atoi(lit.Value)
			codes[name] = v
		}
		return true
	})
	if len(codes) < 10 {
		t.Fatalf("found only %d exit codes in root.go: %v", len(codes), codes)
	}
	return codes
}

// TestEveryExitCodeIsDocumented: each exit code is listed in the root command's --help and in
// docs/cli.md.
func TestEveryExitCodeIsDocumented(t *testing.T) {
	var out bytes.Buffer
	root := NewRoot(&out, &out)
	root.SetArgs([]string{"--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, code := range exitCodes(t) {
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^  %d +\S`, code)).Match(out.Bytes()) {
			t.Errorf("%s (%d) is not listed in berth --help:\n%s", name, code, out.String())
		}
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^\| %d \| \S`, code)).Match(doc) {
			t.Errorf("%s (%d) is not listed in docs/cli.md's exit codes", name, code)
		}
	}
}
