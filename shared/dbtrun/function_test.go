package dbtrun

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
)

func TestConfigFrom(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		check   func(Config) bool
		errHas  string
		explain string
	}{
		{"Lambda defaults", nil, func(c Config) bool {
			return c.DBT == "dbt" && c.ProjectDir == "/var/task/dbt" && c.WorkDir == "/tmp/dbt" && c.Target == "snowflake"
		}, "", "dbt from PATH, the image's project, /tmp, the snowflake target"},
		{"what dbt reads is handed to dbt", map[string]string{"DBT_TARGET": "duckdb", "WAREHOUSE_PATH": "/w.duckdb", "SNOWFLAKE_ROLE": "TRANSFORMER"},
			func(c Config) bool {
				return c.Target == "duckdb" && slices.Contains(c.Env, "WAREHOUSE_PATH=/w.duckdb") &&
					slices.Contains(c.Env, "SNOWFLAKE_ROLE=TRANSFORMER") && slices.Contains(c.Env, "DBT_TARGET=duckdb")
			}, "", "profiles.yml's variables in dbt's environment"},
		{"the secret is read", map[string]string{"SNOWFLAKE_SECRET_ID": "arn:sf"}, nil, "no region", "a secret that cannot be read stops the start"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ConfigFrom(context.Background(), settings.ForFunction(settings.DBT, settings.Values(tc.env)), Deps{})
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("err = %v, want %q (%s)", err, tc.errHas, tc.explain)
				}
				return
			}
			if err != nil || !tc.check(cfg) {
				t.Fatalf("config %+v, %v: want %s", cfg, err, tc.explain)
			}
		})
	}
	// Built with another function's environment, it reads names that function does not declare.
	if _, err := ConfigFrom(context.Background(), settings.ForFunction(settings.Landing), Deps{}); err == nil ||
		!strings.Contains(err.Error(), "cdc-landing reads DBT_BIN") {
		t.Fatalf("a landing environment: %v, want the undeclared read named", err)
	}
}
