package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The Lambda is built with CGO_ENABLED=0: DuckDB (cgo) must never be among its dependencies.
func TestLambdaLinksNoDuckDB(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "-tags", "lambda.norpc,minicore_disabled", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "duckdb") {
			t.Errorf("the warehouse-loader Lambda depends on %s: keep shared/warehouse/duckdb out of its imports", dep)
		}
	}
	if !strings.Contains(string(out), "github.com/snowflakedb/gosnowflake/v2") {
		t.Errorf("go list -deps shows no gosnowflake: the check is not looking at the Lambda")
	}
}
