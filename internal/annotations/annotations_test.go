package annotations

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// key is a string literal that is an annotation key or key prefix (prose
// that mentions one is not).
var key = regexp.MustCompile(`^(io\.clawos\.[a-z0-9.*-]*|[a-z]+\.clawos\.io/.*)$`)

// TestOneTable fails when a Go file of the module outside this package
// (tests aside) spells an annotation key itself.
func TestOneTable(t *testing.T) {
	root := "../.."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == ".cache" || d.Name() == "bin" || path == "../../internal/annotations") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING && key.MatchString(strings.Trim(lit.Value, "`\"")) {
				t.Errorf("%s: the annotation key %s is spelled outside package annotations", path, lit.Value)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
