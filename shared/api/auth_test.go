package api

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestAuthMatrix checks 401 and 403 on every kind of operation, through every transport.
func TestAuthMatrix(t *testing.T) {
	e := newEnv(t)
	other := make([]byte, 32)
	copy(other, "a different secret of 32 bytes..")
	forged, _ := IssueToken(other, "mallory", []string{ScopeRead, ScopeWrite}, time.Hour)
	expired, _ := IssueToken(e.secret, "tester", []string{ScopeRead, ScopeWrite}, -time.Hour)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "x", "scope": "bank:read bank:write",
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	noSub, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"scope": "bank:read",
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString(e.secret)
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "x", "scope": "bank:read"}).SignedString(e.secret)

	read := request{method: "GET", path: "/customers"}
	write := request{method: "POST", path: "/customers", body: map[string]any{"first_name": "A", "last_name": "B", "email": "auth@example.com"}}
	cases := []struct {
		name  string
		req   request
		token string
		want  int
	}{
		{"read without token", read, "", http.StatusUnauthorized},
		{"write without token", write, "", http.StatusUnauthorized},
		{"forged signature", read, forged, http.StatusUnauthorized},
		{"expired", read, expired, http.StatusUnauthorized},
		{"alg none", read, none, http.StatusUnauthorized},
		{"no subject", read, noSub, http.StatusUnauthorized},
		{"no expiry", read, noExp, http.StatusUnauthorized},
		{"garbage", read, "not.a.jwt", http.StatusUnauthorized},
		{"write with read scope", write, e.ro, http.StatusForbidden},
		{"read with write scope", read, e.wo, http.StatusForbidden},
		{"reverse with read scope", request{method: "DELETE", path: "/transactions/00000000-0000-4000-8000-000000000000"}, e.ro, http.StatusForbidden},
		{"read with read scope", read, e.ro, http.StatusOK},
		{"health needs no token", request{method: "GET", path: "/healthz"}, "", http.StatusOK},
		{"docs need no token", request{method: "GET", path: "/docs"}, "", http.StatusOK},
	}
	for _, tr := range e.transports {
		for _, c := range cases {
			t.Run(tr.name+"/"+c.name, func(t *testing.T) {
				r := c.req
				r.token = c.token
				res := call(t, tr, r, c.want)
				if c.want == http.StatusUnauthorized && !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("401 without a WWW-Authenticate: Bearer challenge: %v", res.header)
				}
			})
		}
	}
	// Basic auth is not a bearer token.
	res := call(t, e.transports[0], request{method: "GET", path: "/customers", header: map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}}, http.StatusUnauthorized)
	if p := problemOf(t, res); p.Code != "unauthorized" {
		t.Fatalf("basic auth gave code %q", p.Code)
	}
}

func TestVerifierConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  AuthConfig
	}{
		{"nothing", AuthConfig{}},
		{"short secret", AuthConfig{Secret: []byte("short")}},
		{"both", AuthConfig{Secret: make([]byte, 32), JWKSURL: "http://127.0.0.1:1/jwks.json"}},
	}
	for _, c := range cases {
		if _, err := newVerifier(context.Background(), c.cfg); err == nil {
			t.Errorf("%s: accepted, want a configuration error", c.name)
		}
	}
}

func TestDevSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "jwt-dev-secret")
	first, err := DevSecret(path)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	again, err := DevSecret(path)
	if err != nil || string(again) != string(first) || len(first) < 32 {
		t.Fatalf("second read %q (%v), want the %d-byte secret made first", again, err, len(first))
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("secret file mode %v (%v), want 0600", info.Mode().Perm(), err)
	}
	tok, err := IssueToken(first, "dev", []string{ScopeRead}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	v, err := newVerifier(context.Background(), AuthConfig{Secret: again})
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.verify("Bearer " + tok)
	if err != nil || p.Subject != "dev" || !p.Scopes[ScopeRead] || p.Scopes[ScopeWrite] {
		t.Fatalf("token from the dev secret verified as %+v (%v)", p, err)
	}
}
