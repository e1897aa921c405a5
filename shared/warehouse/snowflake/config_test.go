package snowflake_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/snowflake"
)

type secrets map[string]string

func (s secrets) String(_ context.Context, id string) (string, error) {
	v, ok := s[id]
	if !ok {
		return "", errors.New("ResourceNotFoundException")
	}
	return v, nil
}

func TestConfigFromEnv(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	pem8 := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
	pem1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	secretJSON, _ := json.Marshal(map[string]string{"private_key": pem8, "user": "LOADER_FROM_SECRET"})
	sm := secrets{"fin/snowflake": string(secretJSON), "fin/garbage": "-----BEGIN PRIVATE KEY----- not json"}
	base := map[string]string{"SNOWFLAKE_ACCOUNT": "org-acct", "SNOWFLAKE_USER": "LOADER", "SNOWFLAKE_DATABASE": "FIN"}

	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr []string
		check   func(t *testing.T, c snowflake.Config)
	}{
		{"key in env, PKCS#8", map[string]string{"SNOWFLAKE_PRIVATE_KEY": pem8, "LOADER_TIMEOUT": "45s"}, nil,
			func(t *testing.T, c snowflake.Config) {
				if !c.PrivateKey.Equal(key) || c.Timeout != 45*time.Second || len(c.Tables) != 5 {
					t.Errorf("config %+v: want the key, 45s, the 5 default tables (the source tables, snapshot_windows, transaction_metadata)", c)
				}
			}},
		{"key in env, PKCS#1 with literal \\n", map[string]string{"SNOWFLAKE_PRIVATE_KEY": strings.ReplaceAll(pem1, "\n", `\n`), "LOADER_TABLES": "accounts, customers"}, nil,
			func(t *testing.T, c snowflake.Config) {
				if !c.PrivateKey.Equal(key) || strings.Join(c.Tables, ",") != "accounts,customers" {
					t.Errorf("config %+v: want the key and tables accounts,customers", c)
				}
			}},
		{"key in Secrets Manager", map[string]string{"SNOWFLAKE_SECRET_ID": "fin/snowflake"}, nil,
			func(t *testing.T, c snowflake.Config) {
				if !c.PrivateKey.Equal(key) || c.User != "LOADER_FROM_SECRET" || c.Account != "org-acct" {
					t.Errorf("config %+v: want key and user from the secret, account from env", c)
				}
			}},
		{"secret missing", map[string]string{"SNOWFLAKE_SECRET_ID": "fin/nope"}, []string{"read secret fin/nope"}, nil},
		{"secret not JSON, not echoed", map[string]string{"SNOWFLAKE_SECRET_ID": "fin/garbage"}, []string{"not a JSON object"}, nil},
		{"no key, bad table, bad port", map[string]string{"SNOWFLAKE_DATABASE": "", "LOADER_TABLES": "Accounts;drop", "SNOWFLAKE_PORT": "x"},
			[]string{"no private key", "SNOWFLAKE_DATABASE is not set", "LOADER_TABLES", "SNOWFLAKE_PORT"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tc.env {
				env[k] = v
			}
			c, err := snowflake.ConfigFromEnv(context.Background(), func(k string) string { return env[k] }, sm)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				tc.check(t, c)
				return
			}
			if err == nil {
				t.Fatalf("no error, want one saying %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "BEGIN PRIVATE KEY") {
				t.Errorf("error leaks secret material: %v", err)
			}
		})
	}
}
