package docs

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// maxFuncLines bounds a function outside tests, from its func line to its closing brace: past it
// a newcomer has to hold too much at once, so a long function is split into named steps.
const maxFuncLines = 80

// funcLenAllowed lists the functions that may still exceed maxFuncLines, keyed by
// "path Name" (methods as "path Recv.Name"), each with why. An entry that is no longer needed
// fails the test too, so the list only shrinks.
var funcLenAllowed = map[string]string{}

// funcName names a declaration as funcLenAllowed keys it: Name, or Recv.Name for a method.
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	t := fd.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	switch r := t.(type) {
	case *ast.IndexExpr: // generic receiver T[P]
		t = r.X
	case *ast.IndexListExpr:
		t = r.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + fd.Name.Name
	}
	return fd.Name.Name
}

// funcLengths returns the length in lines of each function with a body in f, from its func line
// to its closing brace, keyed by funcName.
func funcLengths(fset *token.FileSet, f *ast.File) map[string]int {
	lengths := map[string]int{}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Body == nil {
			continue
		}
		// A name may repeat (init): the longest one stands for it.
		name, n := funcName(fd), fset.Position(fd.End()).Line-fset.Position(fd.Pos()).Line+1
		lengths[name] = max(lengths[name], n)
	}
	return lengths
}

// longFuncs returns each function of the module's tracked non-test Go files longer than limit
// lines, keyed as funcLenAllowed is, with its length.
func longFuncs(t *testing.T, limit int) map[string]int {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "*.go")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	long := map[string]int{}
	fset := token.NewFileSet()
	files := 0
	for path := range strings.Lines(string(out)) {
		path = strings.TrimSpace(path)
		if path == "" || strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join("..", path), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Errorf("parse %s: %v", path, err)
			continue
		}
		files++
		for name, n := range funcLengths(fset, f) {
			if n > limit {
				long[path+" "+name] = n
			}
		}
	}
	if files == 0 {
		t.Fatal("git ls-files listed no non-test Go file")
	}
	return long
}

func TestNoLongFunctions(t *testing.T) {
	long := longFuncs(t, maxFuncLines)
	var names []string
	for name := range long {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, ok := funcLenAllowed[name]; !ok {
			t.Errorf("%s is %d lines, over %d: split it into named steps (or allowlist it in funclen_test.go with a reason)", name, long[name], maxFuncLines)
		}
	}
	for name, why := range funcLenAllowed {
		if strings.TrimSpace(why) == "" {
			t.Errorf("allowlist entry %s gives no reason", name)
		}
		if _, ok := long[name]; !ok {
			t.Errorf("allowlist entry %s is not over %d lines (or gone): remove it", name, maxFuncLines)
		}
	}
}

// TestFuncLengths checks the measure itself, so the check above cannot pass by counting nothing.
func TestFuncLengths(t *testing.T) {
	tests := []struct {
		name, src string
		want      map[string]int
	}{
		{"one line", "func f() {}", map[string]int{"f": 1}},
		{"func line to closing brace", "func f() {\n\tx := 1\n\t_ = x\n}", map[string]int{"f": 4}},
		{"doc comment not counted", "// f does.\n// More.\nfunc f() {\n}", map[string]int{"f": 2}},
		{"pointer method", "func (s *S) M() {\n}", map[string]int{"S.M": 2}},
		{"value method", "func (s S) M() {}", map[string]int{"S.M": 1}},
		{"generic receiver", "func (s *S[T]) M() {}\nfunc (p P[K, V]) N() {}", map[string]int{"S.M": 1, "P.N": 1}},
		{"no body", "func f()", map[string]int{}},
		{"repeated init: the longest counts", "func init() {\n}\nfunc init() {\n\n\n}\nfunc init() {}", map[string]int{"init": 4}},
		{"closures count in their function", "func f() {\n\tg := func() {\n\t}\n\tg()\n}", map[string]int{"f": 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, "x.go", "package x\n"+tt.src+"\n", 0)
			if err != nil {
				t.Fatal(err)
			}
			got := funcLengths(fset, f)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("funcLengths = %v, want %v", got, tt.want)
			}
		})
	}
}
