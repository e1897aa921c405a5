package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// fin build, fin dlq replay and fin snapshot call the stack's action endpoints with an operator
// token (minted locally, or FIN_OPERATOR_TOKEN), sending what the console's buttons send; an
// action that failed fails the command.
func TestCommandsCallTheActions(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef-test"
	type call struct{ path, body, scope, auth string }
	var got call
	ok := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = call{path: r.URL.Path, body: string(b), auth: r.Header.Get("Authorization")}
		claims := jwt.MapClaims{}
		if _, err := jwt.ParseWithClaims(strings.TrimPrefix(got.auth, "Bearer "), claims, func(*jwt.Token) (any, error) { return []byte(secret), nil }); err == nil {
			got.scope, _ = claims["scope"].(string)
		}
		json.NewEncoder(w).Encode(map[string]any{"id": 1, "subject": "me", "action": "x", "ok": ok, "outcome": "queued"})
	}))
	defer srv.Close()
	t.Setenv("FIN_CONSOLE_URL", srv.URL)
	t.Setenv("FIN_JWT_SECRET", secret)
	t.Setenv("FIN_JWKS_URL", "")
	for _, tc := range []struct {
		cmd  string
		args []string
		want call
	}{
		{"build", nil, call{path: "/api/actions/build", body: `{}`, scope: "bank:operator"}},
		{"build", []string{"-select", "dim_accounts"}, call{path: "/api/actions/build", body: `{"model":"dim_accounts"}`, scope: "bank:operator"}},
		{"dlq", []string{"replay", "--all"}, call{path: "/api/actions/dlq-replay", body: `{}`, scope: "bank:operator"}},
		{"dlq", []string{"replay", "dlq/a.json", "dlq/b.json"}, call{path: "/api/actions/dlq-replay", body: `{"keys":["dlq/a.json","dlq/b.json"]}`, scope: "bank:operator"}},
		{"snapshot", []string{"-table", "accounts, customers"}, call{path: "/api/actions/snapshot", body: `{"tables":["accounts","customers"]}`, scope: "bank:operator"}},
	} {
		t.Setenv("FIN_OPERATOR_TOKEN", "")
		if err := commands[tc.cmd].run(context.Background(), tc.args); err != nil {
			t.Fatalf("fin %s %v: %v", tc.cmd, tc.args, err)
		}
		got.auth = ""
		if got != tc.want {
			t.Errorf("fin %s %v sent %+v, want %+v", tc.cmd, tc.args, got, tc.want)
		}
	}
	t.Setenv("FIN_OPERATOR_TOKEN", "from-the-idp")
	ok = false
	if err := commands["build"].run(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "failed") {
		t.Errorf("a failed action: %v, want the command to fail", err)
	}
	if got.auth != "Bearer from-the-idp" {
		t.Errorf("sent %q, want FIN_OPERATOR_TOKEN", got.auth)
	}
}
