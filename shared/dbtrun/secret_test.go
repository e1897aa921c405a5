package dbtrun

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
)

func TestSnowflakeEnv(t *testing.T) {
	env, err := SnowflakeEnv(`{"account":"xy12345","user":"FIN_DBT","private_key":"-----BEGIN PRIVATE KEY-----\nMII...\n-----END PRIVATE KEY-----\n"}`)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(env, "SNOWFLAKE_ACCOUNT=xy12345") || !slices.Contains(env, "SNOWFLAKE_USER=FIN_DBT") || len(env) != 3 {
		t.Fatalf("env %q", env)
	}
	for _, bad := range []string{`{"account":"x"}`, `not json`, `{"private_key":""}`} {
		if _, err := SnowflakeEnv(bad); err == nil {
			t.Errorf("SnowflakeEnv(%q) accepted", bad)
		}
	}
}

func TestEmitMetrics(t *testing.T) {
	var b bytes.Buffer
	emitMetrics(&b, Summary{ModelsBuilt: 13, TestsPassed: 80, TestsFailed: 2, ModelsFailed: 1, WallSeconds: 4.5})
	var line struct {
		Function                    string
		DbtModelsBuilt, DbtFailures float64
	}
	if err := json.Unmarshal(b.Bytes(), &line); err != nil || line.Function != "dbt-runner" || line.DbtModelsBuilt != 13 || line.DbtFailures != 3 {
		t.Fatalf("EMF line %q (%v)", b.String(), err)
	}
}
