package dbtrun

import (
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
