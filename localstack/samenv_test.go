// Package localstack holds the docker-compose side of the project (LocalStack's ready hook and
// sam local's env-vars file); its only Go is this test of that file.
package localstack

import (
	"bufio"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const (
	root        = ".."
	envVarsFile = "localstack/sam-env.json"
)

// settingsOf lists the settings a function reads. Until every function declares its settings in
// one place, that is the template's Environment plus every name its Go packages read. When the
// declarations land, this line is the one to change (to the declarations of fn.Dir's function).
var settingsOf = settingsFromTemplateAndSource

// samFunction is one AWS::Serverless::Function of template.yaml.
type samFunction struct {
	LogicalID string
	Dir       string          // functions/<name>, the Go package its bootstrap is built from
	Declared  map[string]bool // its Environment.Variables, the Globals' included
}

// reserved are the variables Lambda itself sets (and sam local too); a function cannot set them.
// https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
var reserved = map[string]bool{
	"_HANDLER": true, "_X_AMZN_TRACE_ID": true, "AWS_DEFAULT_REGION": true, "AWS_REGION": true,
	"AWS_EXECUTION_ENV": true, "AWS_LAMBDA_FUNCTION_NAME": true, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true,
	"AWS_LAMBDA_FUNCTION_VERSION": true, "AWS_LAMBDA_INITIALIZATION_TYPE": true,
	"AWS_LAMBDA_LOG_GROUP_NAME": true, "AWS_LAMBDA_LOG_STREAM_NAME": true, "AWS_ACCESS_KEY": true,
	"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true,
	"AWS_LAMBDA_RUNTIME_API": true, "LAMBDA_TASK_ROOT": true, "LAMBDA_RUNTIME_DIR": true,
}

// The env-vars file must give each function every setting it reads, so that what a container
// gets under sam local is written down rather than left to the reader's shell.
func TestSamEnvSetsEveryFunctionSetting(t *testing.T) {
	fns, err := templateFunctions(filepath.Join(root, "template.yaml"), filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, envVarsFile))
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]map[string]string
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatalf("%s: sam wants {\"<LogicalId>\": {\"NAME\": \"value\"}}: %v", envVarsFile, err)
	}
	for _, e := range checkEnvVars(file, fns, settingsOf) {
		t.Error(e)
	}
}

// The check itself: each way the file can fall short is reported.
func TestCheckEnvVarsFindsEachGap(t *testing.T) {
	fns := []samFunction{{LogicalID: "ApiFunction", Dir: "functions/api", Declared: map[string]bool{"STAGE": true, "FIN_X": true}}}
	settings := func(samFunction) ([]string, error) { return []string{"STAGE", "FIN_X", "FIN_Y", "AWS_REGION"}, nil }
	for _, tc := range []struct {
		name string
		file map[string]map[string]string
		want []string // substrings of the errors, in order; none for a good file
	}{
		{"complete", map[string]map[string]string{"ApiFunction": {"STAGE": "dev", "FIN_X": "x", "FIN_Y": ""}}, nil},
		{"a shared value in Parameters", map[string]map[string]string{"Parameters": {"STAGE": "dev"}, "ApiFunction": {"FIN_X": "x", "FIN_Y": ""}}, nil},
		{"a setting missing", map[string]map[string]string{"ApiFunction": {"STAGE": "dev", "FIN_Y": ""}}, []string{"ApiFunction does not set FIN_X"}},
		{"a function missing", map[string]map[string]string{}, []string{"no entry for ApiFunction"}},
		{"an unknown function", map[string]map[string]string{"ApiFunction": {"STAGE": "dev", "FIN_X": "x", "FIN_Y": ""}, "OldFunction": {}},
			[]string{"OldFunction is not a function of template.yaml"}},
		{"a value sam local would drop", map[string]map[string]string{"ApiFunction": {"STAGE": "dev", "FIN_X": "x", "FIN_Y": "y"}},
			[]string{"ApiFunction sets FIN_Y=\"y\", which template.yaml does not declare"}},
		{"a reserved variable", map[string]map[string]string{"ApiFunction": {"STAGE": "dev", "FIN_X": "x", "FIN_Y": "", "AWS_REGION": "eu-west-1"}},
			[]string{"ApiFunction sets AWS_REGION, which Lambda reserves"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := checkEnvVars(tc.file, fns, settings)
			if len(errs) != len(tc.want) {
				t.Fatalf("got %d errors %q, want %d containing %q", len(errs), errs, len(tc.want), tc.want)
			}
			for i, want := range tc.want {
				if !strings.Contains(errs[i].Error(), want) {
					t.Errorf("error %d is %q, want it to contain %q", i, errs[i], want)
				}
			}
		})
	}
}

// The source scan finds names read through os.Getenv, os.LookupEnv and getenv/env helpers.
func TestEnvReadsFindsEachForm(t *testing.T) {
	src := `package p
import "os"
func f(getenv func(string) string) {
	_ = os.Getenv("A_ONE")
	_, _ = os.LookupEnv("B_TWO")
	_ = getenv("C_THREE")
	_ = env("D_FOUR", "default")
	_ = os.Getenv(name)
	_ = strings.ToUpper("not_an_env")
}`
	f, err := parser.ParseFile(token.NewFileSet(), "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := envReads(f)
	if want := []string{"A_ONE", "B_TWO", "C_THREE", "D_FOUR"}; !slices.Equal(got, want) {
		t.Errorf("envReads = %q, want %q", got, want)
	}
}

// checkEnvVars reports what the env-vars file lacks or sets in vain, function by function.
func checkEnvVars(file map[string]map[string]string, fns []samFunction, settings func(samFunction) ([]string, error)) []error {
	var errs []error
	known := map[string]bool{"Parameters": true}
	for _, fn := range fns {
		known[fn.LogicalID] = true
		own, ok := file[fn.LogicalID]
		if !ok {
			errs = append(errs, fmt.Errorf("%s has no entry for %s (a function of template.yaml)", envVarsFile, fn.LogicalID))
			continue
		}
		// What sam local applies: the file's Parameters, then the function's own entry.
		set := map[string]string{}
		for k, v := range file["Parameters"] {
			set[k] = v
		}
		for k, v := range own {
			set[k] = v
		}
		names, err := settings(fn)
		if err != nil {
			errs = append(errs, fmt.Errorf("settings of %s: %w", fn.LogicalID, err))
			continue
		}
		for _, name := range names {
			if _, ok := set[name]; !ok && !reserved[name] {
				errs = append(errs, fmt.Errorf("%s: %s does not set %s, which it reads (set it, \"\" for its default)", envVarsFile, fn.LogicalID, name))
			}
		}
		for _, name := range slices.Sorted(maps.Keys(set)) {
			switch {
			case reserved[name]:
				errs = append(errs, fmt.Errorf("%s: %s sets %s, which Lambda reserves (sam local takes it from --region and the AWS profile)", envVarsFile, fn.LogicalID, name))
			case !fn.Declared[name] && set[name] != "":
				// sam local passes a container only the variables the template declares.
				errs = append(errs, fmt.Errorf("%s: %s sets %s=%q, which template.yaml does not declare for it, so sam local drops it: declare it there or leave it \"\"",
					envVarsFile, fn.LogicalID, name, set[name]))
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(file)) {
		if !known[id] {
			errs = append(errs, fmt.Errorf("%s: %s is not a function of template.yaml", envVarsFile, id))
		}
	}
	return errs
}

// settingsFromTemplateAndSource: the function's declared Environment plus every variable name
// the Go packages of its bootstrap (the module's own, as the Lambda build compiles them) read.
func settingsFromTemplateAndSource(fn samFunction) ([]string, error) {
	names := map[string]bool{}
	for n := range fn.Declared {
		names[n] = true
	}
	cmd := exec.Command("go", "list", "-deps", "-tags", "lambda.norpc,minicore_disabled",
		"-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}\t{{join .GoFiles \" \"}}{{end}}{{end}}", "./"+fn.Dir)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps ./%s: %w", fn.Dir, err)
	}
	fset := token.NewFileSet()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		dir, files, _ := strings.Cut(line, "\t")
		for _, name := range strings.Fields(files) {
			f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, 0)
			if err != nil {
				return nil, err
			}
			for _, n := range envReads(f) {
				names[n] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(names)), nil
}

var envName = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

// envReads returns the names f reads from the environment: the string literal passed first to
// os.Getenv, os.LookupEnv, or a helper named getenv or env (a func(string) string parameter, a
// lookup with a default).
func envReads(f *ast.File) []string {
	var names []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		var callee string
		switch fun := call.Fun.(type) {
		case *ast.SelectorExpr:
			callee = fun.Sel.Name
		case *ast.Ident:
			callee = fun.Name
		}
		switch callee {
		case "Getenv", "LookupEnv", "getenv", "env":
		default:
			return true
		}
		if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if s, err := strconv.Unquote(lit.Value); err == nil && envName.MatchString(s) {
				names = append(names, s)
			}
		}
		return true
	})
	return names
}

// templateFunctions reads each function's declared variables from the template and its Go
// package from the Makefile's build-<LogicalId> target (zip functions) or its Dockerfile (images).
func templateFunctions(templatePath, makefilePath string) ([]samFunction, error) {
	body, err := os.ReadFile(templatePath)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(body, &doc); err != nil || len(doc.Content) == 0 {
		return nil, fmt.Errorf("parse %s: %v", templatePath, err)
	}
	tmpl := doc.Content[0]
	builds, err := makefileBuilds(makefilePath)
	if err != nil {
		return nil, err
	}
	globals := keys(get(tmpl, "Globals", "Function", "Environment", "Variables"))
	var fns []samFunction
	resources := get(tmpl, "Resources")
	if resources == nil {
		return nil, fmt.Errorf("%s has no Resources", templatePath)
	}
	for i := 0; i+1 < len(resources.Content); i += 2 {
		id, res := resources.Content[i].Value, resources.Content[i+1]
		if t := get(res, "Type"); t == nil || t.Value != "AWS::Serverless::Function" {
			continue
		}
		fn := samFunction{LogicalID: id, Dir: builds[id], Declared: map[string]bool{}}
		if d := get(res, "Metadata", "Dockerfile"); d != nil {
			fn.Dir = filepath.Dir(d.Value)
		}
		if fn.Dir == "" {
			return nil, fmt.Errorf("%s: no build-%s target in the Makefile and no Metadata.Dockerfile: which functions/ package is it?", templatePath, id)
		}
		for _, n := range append(globals, keys(get(res, "Properties", "Environment", "Variables"))...) {
			fn.Declared[n] = true
		}
		fns = append(fns, fn)
	}
	if len(fns) == 0 {
		return nil, fmt.Errorf("%s declares no AWS::Serverless::Function", templatePath)
	}
	return fns, nil
}

var buildTarget = regexp.MustCompile(`^((?:build-\S+\s*)+):`)
var lambdaBuild = regexp.MustCompile(`lambda-build,([^,)]+),`)

// makefileBuilds maps each build-<LogicalId> target to the functions/ folder its recipe builds.
func makefileBuilds(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	var targets []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m := buildTarget.FindStringSubmatch(line); m != nil {
			targets = strings.Fields(m[1])
			continue
		}
		if m := lambdaBuild.FindStringSubmatch(line); m != nil && strings.HasPrefix(line, "\t") {
			for _, t := range targets {
				out[strings.TrimPrefix(t, "build-")] = "functions/" + m[1]
			}
		}
		if !strings.HasPrefix(line, "\t") {
			targets = nil
		}
	}
	return out, sc.Err()
}

// get walks mapping keys from n; nil when one is missing.
func get(n *yaml.Node, path ...string) *yaml.Node {
	for _, key := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

func keys(n *yaml.Node) []string {
	var out []string
	if n != nil && n.Kind == yaml.MappingNode {
		for i := 0; i < len(n.Content); i += 2 {
			out = append(out, n.Content[i].Value)
		}
	}
	return out
}
