package awssecrets

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
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

func TestDatabaseURL(t *testing.T) {
	endpoint := fakeSecretsManager(t, map[string]string{
		"arn:json": `{"url":"postgres://app@db.internal:5432/fin","username":"app"}`,
		"arn:bare": "postgres://bare@db.internal/fin",
		"arn:junk": `{"user":"x"}`,
	})
	c := Client{Region: "eu-west-1", Endpoint: endpoint, Creds: &aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "s", SessionToken: "session"}}
	cases := []struct {
		name, env, arn, want, errHas string
	}{
		{"DATABASE_URL wins", "postgres://env@host/fin", "arn:json", "postgres://env@host/fin", ""},
		{"json secret", "", "arn:json", "postgres://app@db.internal:5432/fin", ""},
		{"bare URL secret", "", "arn:bare", "postgres://bare@db.internal/fin", ""},
		{"secret without url", "", "arn:junk", "", "neither"},
		{"missing secret", "", "arn:none", "", "ResourceNotFoundException"},
		{"nothing configured", "", "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DATABASE_URL", tc.env)
			t.Setenv("DATABASE_SECRET_ARN", tc.arn)
			got, err := DatabaseURL(context.Background(), c)
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
	bad := c
	bad.Creds = &aws.Credentials{AccessKeyID: "AKIDOTHER", SecretAccessKey: "s"}
	t.Setenv("DATABASE_URL", "")
	t.Setenv("DATABASE_SECRET_ARN", "arn:json")
	if _, err := DatabaseURL(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("a refused signature gave %v, want the 403 reported", err)
	}
}
