package awssecrets

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
)

// fakeSecretsManager answers GetSecretValue for the secrets it holds, after checking that the
// request is signed for secretsmanager in the expected region.
func fakeSecretsManager(t *testing.T, secrets map[string]string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDTEST/") || !strings.Contains(auth, "/eu-west-1/secretsmanager/aws4_request") ||
			r.Header.Get("X-Amz-Security-Token") != "session" || r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"__type":"InvalidSignatureException","message":"bad signature"}`)
			return
		}
		var in struct{ SecretId string }
		json.NewDecoder(r.Body).Decode(&in)
		s, ok := secrets[in.SecretId]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"ARN": in.SecretId, "SecretString": s})
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// A client built from a function's environment signs with the credentials Lambda sets, for the
// region there, against AWS_ENDPOINT_URL_SECRETS_MANAGER; every failure names what went wrong.
func TestStringFromEnv(t *testing.T) {
	endpoint := fakeSecretsManager(t, map[string]string{"arn:db": `{"url":"postgres://app@db.internal/fin"}`})
	base := map[string]string{"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "s",
		"AWS_SESSION_TOKEN": "session", "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint}
	with := func(kv ...string) map[string]string {
		m := maps.Clone(base)
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name, id, want, errHas string
		env                    map[string]string
	}{
		{"read", "arn:db", `{"url":"postgres://app@db.internal/fin"}`, "", base},
		{"AWS_DEFAULT_REGION when no AWS_REGION", "arn:db", `{"url":"postgres://app@db.internal/fin"}`, "",
			with("AWS_REGION", "", "AWS_DEFAULT_REGION", "eu-west-1")},
		{"signed for another region", "arn:db", "", "403", with("AWS_REGION", "us-east-2")},
		{"missing secret", "arn:none", "", "ResourceNotFoundException", base},
		{"refused signature", "arn:db", "", "403", with("AWS_ACCESS_KEY_ID", "AKIDOTHER")},
		{"no credentials", "arn:db", "", "no credentials", with("AWS_SECRET_ACCESS_KEY", "")},
		{"no region", "arn:db", "", "no region", with("AWS_REGION", "")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := settings.ForFunction(settings.Loader, settings.Values(tc.env))
			got, err := FromEnv(env).String(context.Background(), tc.id)
			if env.Err() != nil {
				t.Fatal(env.Err())
			}
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("got %q, %v; want an error mentioning %q", got, err, tc.errHas)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
