package settings_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
)

const module = "github.com/fin-orchestrator/fin-orchestrator/"

// docs/configuration.md is generated from the declarations and must not go stale.
func TestConfigurationDocIsCurrent(t *testing.T) {
	got, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != settings.Markdown() {
		t.Fatal("docs/configuration.md is stale: run `go generate ./shared/settings` and commit it")
	}
}

func TestEnv(t *testing.T) {
	cases := []struct {
		name     string
		function string
		sources  []settings.Source
		read     string
		want     string
		errHas   string
	}{
		{"declared default", settings.Landing, nil, "FAIL_BATCH", "false", ""},
		{"a later source wins", settings.Landing, []settings.Source{
			settings.Values(map[string]string{"LAKE_BUCKET": "template"}), settings.Values(map[string]string{"LAKE_BUCKET": "local"})},
			"LAKE_BUCKET", "local", ""},
		{"an empty value counts as unset", settings.Landing, []settings.Source{
			settings.Values(map[string]string{"LAKE_BUCKET": "template"}), settings.Values(map[string]string{"LAKE_BUCKET": ""})},
			"LAKE_BUCKET", "template", ""},
		{"declared for another function", settings.Landing, []settings.Source{
			settings.Values(map[string]string{"DATABASE_URL": "postgres://x"})}, "DATABASE_URL", "", "cdc-landing reads DATABASE_URL"},
		{"declared for none", settings.API, []settings.Source{
			settings.Values(map[string]string{"FIN_NOT_A_SETTING": "x"})}, "FIN_NOT_A_SETTING", "", "api reads FIN_NOT_A_SETTING"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := settings.ForFunction(tc.function, tc.sources...)
			if got := env.Get(tc.read); got != tc.want {
				t.Errorf("Get(%s) = %q, want %q", tc.read, got, tc.want)
			}
			err := env.Err()
			if tc.errHas == "" && err != nil || tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas)) {
				t.Errorf("Err() = %v, want %q", err, tc.errHas)
			}
			if !slices.Contains(env.Read(), tc.read) {
				t.Errorf("Read() = %v, lacks %s", env.Read(), tc.read)
			}
		})
	}
	bad := settings.ForFunction(settings.Landing, settings.Values(map[string]string{"FAIL_BATCH": "yes please"}))
	if _, err := bad.Bool("FAIL_BATCH"); err == nil || !strings.Contains(err.Error(), "FAIL_BATCH") {
		t.Errorf("Bool of a non-boolean: %v, want an error naming FAIL_BATCH", err)
	}
}

func TestDeclarations(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range settings.All() {
		switch {
		case seen[s.Name]:
			t.Errorf("%s is declared twice", s.Name)
		case s.Meaning == "":
			t.Errorf("%s has no meaning", s.Name)
		case len(s.Functions) == 0:
			t.Errorf("%s is read by no function", s.Name)
		}
		seen[s.Name] = true
		for _, f := range s.Functions {
			if !slices.Contains(settings.Functions, f) {
				t.Errorf("%s names an unknown function %q", s.Name, f)
			}
		}
	}
}

// envFuncs are the os (and syscall) functions that touch the environment.
var envFuncs = []string{"Getenv", "LookupEnv", "Environ", "ExpandEnv", "Setenv", "Unsetenv", "Clearenv"}

// envName is the shape of the variables the project reads.
var envName = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$`)

// Each function's code (every package of the module its Lambda links, main included) reads the
// environment only through this package, and only the names it declares; and every setting a
// function declares is read by its code (or, for the dbt-runner, by dbt: see
// TestDbtReadsOnlyDeclaredSettings), so a declaration cannot outlive its use. A read is a call
// getenv("NAME"), x.Get("NAME"), x.Set("NAME"), x.Bool("NAME") or x.Int("NAME").
func TestFunctionsReadOnlyDeclaredSettings(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	for _, fn := range settings.Functions {
		t.Run(fn, func(t *testing.T) {
			cmd := exec.Command("go", "list", "-deps", "-tags", "lambda.norpc,minicore_disabled",
				"-f", `{{if not .Standard}}{{.ImportPath}}|{{.Dir}}|{{join .GoFiles ","}}{{end}}`, "../../functions/"+fn)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list: %v", err)
			}
			reads := map[string]string{} // name -> where
			packages := 0
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				parts := strings.Split(line, "|")
				if len(parts) != 3 || !strings.HasPrefix(parts[0], module) {
					continue
				}
				packages++
				for _, f := range strings.Split(parts[2], ",") {
					scanFile(t, parts[0], filepath.Join(parts[1], f), reads)
				}
			}
			if packages < 3 || !slices.ContainsFunc(strings.Split(string(out), "\n"), func(l string) bool {
				return strings.HasPrefix(l, module+"functions/"+fn+"|")
			}) {
				t.Fatalf("go list found %d packages of the module, not functions/%s's: the scan is not looking at the function", packages, fn)
			}
			for name, where := range reads {
				if s, ok := settings.Lookup(name); !ok || !s.ReadBy(fn) {
					t.Errorf("%s reads %s (%s), which shared/settings does not declare for %s", fn, name, where, fn)
				}
			}
			for _, s := range settings.For(fn) {
				if _, ok := reads[s.Name]; !ok && !(fn == settings.DBT && s.Dbt) {
					t.Errorf("%s declares %s, which its code never reads: drop it from the declaration", fn, s.Name)
				}
			}
		})
	}
}

// scanFile adds the settings path's code reads to reads and fails on any environment access that
// bypasses this package.
func scanFile(t *testing.T, pkg, path string, reads map[string]string) {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	local := map[string]string{} // import name -> path
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		name := filepath.Base(p)
		if imp.Name != nil {
			name = imp.Name.Name
		}
		local[name] = p
	}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		var callee string
		switch fun := call.Fun.(type) {
		case *ast.Ident:
			callee = fun.Name
		case *ast.SelectorExpr:
			callee = fun.Sel.Name
			if x, ok := fun.X.(*ast.Ident); ok && pkg != module+"shared/settings" {
				if p := local[x.Name]; (p == "os" || p == "syscall") && slices.Contains(envFuncs, callee) {
					t.Errorf("%s: %s.%s: read the environment through shared/settings", fset.Position(call.Pos()), p, callee)
				}
			}
		}
		if !slices.Contains([]string{"getenv", "Get", "Set", "Bool", "Int"}, callee) || len(call.Args) == 0 {
			return true
		}
		if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if name, _ := strconv.Unquote(lit.Value); envName.MatchString(name) {
				reads[name] = fset.Position(lit.Pos()).String()
			}
		}
		return true
	})
}

// dbt reads its own environment (profiles.yml's env_var); the dbt-runner hands it the settings
// marked Dbt. Each name dbt reads must be one of them, and each of them must be read by dbt.
func TestDbtReadsOnlyDeclaredSettings(t *testing.T) {
	envVar := regexp.MustCompile(`env_var\(\s*['"]([A-Za-z0-9_]+)['"]`)
	read := map[string]string{}
	err := filepath.WalkDir("../../dbt", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && slices.Contains([]string{"target", "logs", "dbt_packages"}, d.Name()) {
			return filepath.SkipDir
		}
		if ext := filepath.Ext(path); d.IsDir() || (ext != ".yml" && ext != ".yaml" && ext != ".sql") {
			return nil
		}
		b, err := os.ReadFile(path)
		for _, m := range envVar.FindAllStringSubmatch(string(b), -1) {
			read[m[1]] = path
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(read) < 5 {
		t.Fatalf("found %d env_var reads under dbt/ (%v): the scan is not reading profiles.yml", len(read), read)
	}
	for name, where := range read {
		if s, ok := settings.Lookup(name); !ok || !s.ReadBy(settings.DBT) || !s.Dbt {
			t.Errorf("%s reads %s, which shared/settings does not declare for dbt-runner with Dbt set", where, name)
		}
	}
	for _, s := range settings.For(settings.DBT) {
		if _, ok := read[s.Name]; s.Dbt && !ok {
			t.Errorf("%s is marked Dbt but nothing under dbt/ reads it", s.Name)
		}
	}
}
