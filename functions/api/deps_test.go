package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestLambdaLinksNoHeavyDriver keeps the bootstrap within its 15 MB budget: the API Lambda, built
// as the Makefile builds it, must not link gosnowflake (about 9 MB; history goes through
// shared/warehouse/snowflakeapi) nor DuckDB (cgo, never in a Lambda).
func TestLambdaLinksNoHeavyDriver(t *testing.T) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	cmd := exec.Command(gobin, "list", "-deps", "-tags", "lambda.norpc,minicore_disabled", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, exitStderr(err))
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 || !slices.Contains(deps, "github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/snowflakeapi") {
		t.Fatalf("go list -deps listed %d packages without snowflakeapi: not the API Lambda's dependencies?", len(deps))
	}
	for _, forbidden := range []string{"github.com/snowflakedb/gosnowflake", "github.com/duckdb/", "github.com/marcboeker/go-duckdb",
		"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"} {
		for _, d := range deps {
			if strings.HasPrefix(d, forbidden) {
				t.Errorf("functions/api links %s: read Snowflake through shared/warehouse/snowflakeapi, keep the driver out of the Lambda (see docs/api.md)", d)
				break
			}
		}
	}
}

func exitStderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
