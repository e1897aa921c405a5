package api

import (
	"context"
	"fmt"
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

// TestVerifierConfig: configurations that would accept tokens meant for someone else fail at
// start-up, with a message naming the setting.
func TestVerifierConfig(t *testing.T) {
	jwks := "http://127.0.0.1:1/jwks.json"
	cases := []struct {
		name, want string
		cfg        AuthConfig
	}{
		{"nothing", "no JWKS URL", AuthConfig{}},
		{"short secret", "at least 32 bytes", AuthConfig{Secret: []byte("short")}},
		{"both", "not both", AuthConfig{Secret: make([]byte, 32), JWKSURL: jwks, Issuer: "i", Audience: "a"}},
		{"JWKS without issuer", "FIN_JWT_ISSUER", AuthConfig{JWKSURL: jwks, Audience: "a"}},
		{"JWKS without audience", "FIN_JWT_AUDIENCE", AuthConfig{JWKSURL: jwks, Issuer: "i"}},
	}
	for _, c := range cases {
		_, err := newVerifier(context.Background(), c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a configuration error naming %q", c.name, err, c.want)
		}
	}
}

// TestAuthConfigFromEnv reads the settings the Lambda and fin read, with their defaults.
func TestAuthConfigFromEnv(t *testing.T) {
	for _, k := range []string{"FIN_JWKS_URL", "FIN_JWT_SECRET", "FIN_JWT_ISSUER", "FIN_JWT_AUDIENCE", "FIN_JWT_SCOPE_MAP"} {
		t.Setenv(k, "")
	}
	t.Setenv("FIN_JWKS_URL", "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_X/.well-known/jwks.json")
	if _, err := AuthConfigFromEnv(os.Getenv, ""); err == nil || !strings.Contains(err.Error(), "FIN_JWT_ISSUER") {
		t.Fatalf("JWKS without issuer: %v, want an error naming FIN_JWT_ISSUER", err)
	}
	t.Setenv("FIN_JWT_ISSUER", "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_X")
	if _, err := AuthConfigFromEnv(os.Getenv, ""); err == nil || !strings.Contains(err.Error(), "FIN_JWT_AUDIENCE") {
		t.Fatalf("JWKS without audience: %v, want an error naming FIN_JWT_AUDIENCE", err)
	}
	t.Setenv("FIN_JWT_AUDIENCE", "app-client")
	t.Setenv("FIN_JWT_SCOPE_MAP", "fin-api/read=bank:read,fin-api/write=bank:write,fin-api/all=bank:read,fin-api/all=bank:write")
	c, err := AuthConfigFromEnv(os.Getenv, "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"fin-api/read": {ScopeRead}, "fin-api/write": {ScopeWrite}, "fin-api/all": {ScopeRead, ScopeWrite}}
	if c.Audience != "app-client" || fmt.Sprint(c.ScopeMap) != fmt.Sprint(want) {
		t.Fatalf("read %+v, want audience app-client and scope map %v", c, want)
	}
	for _, bad := range []string{"fin-api/read", "fin-api/read=admin", "=bank:read", "a b=bank:read"} {
		t.Setenv("FIN_JWT_SCOPE_MAP", bad)
		if _, err := AuthConfigFromEnv(os.Getenv, ""); err == nil || !strings.Contains(err.Error(), "FIN_JWT_SCOPE_MAP") {
			t.Errorf("scope map %q: %v, want an error naming FIN_JWT_SCOPE_MAP", bad, err)
		}
	}

	// A shared secret: the local issuer and audience, which fin token's tokens carry.
	t.Setenv("FIN_JWT_SCOPE_MAP", "")
	t.Setenv("FIN_JWKS_URL", "")
	t.Setenv("FIN_JWT_ISSUER", "")
	t.Setenv("FIN_JWT_AUDIENCE", "")
	t.Setenv("FIN_JWT_SECRET", strings.Repeat("s", 32))
	c, err = AuthConfigFromEnv(os.Getenv, "")
	if err != nil || c.Issuer != DevIssuer || c.Audience != DevAudience {
		t.Fatalf("with a secret: %+v, %v; want issuer %s and audience %s", c, err, DevIssuer, DevAudience)
	}
	tok, err := c.IssueToken("dev", []string{ScopeRead}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	v, err := newVerifier(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := v.verify("Bearer " + tok); err != nil || p.Subject != "dev" || !p.Scopes[ScopeRead] {
		t.Fatalf("fin token's token verified as %+v, %v", p, err)
	}
	// The secret alone is not enough: a token without the local issuer and client is refused.
	bare, _ := IssueToken(c.Secret, "dev", []string{ScopeRead}, time.Minute)
	if p, err := v.verify("Bearer " + bare); err == nil {
		t.Fatalf("a token without iss and client_id accepted as %+v", p)
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

// A development secret file that cannot be used is an error naming the file and the fix, at
// once: never a loop, never silently replaced.
func TestDevSecretRefusesBadFiles(t *testing.T) {
	good := strings.Repeat("a", 43)
	for _, tc := range []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
	}{
		{"empty after a crash", "", 0o600, "fewer than 32"},
		{"short", "abc\n", 0o600, "fewer than 32"},
		{"corrupt", strings.Repeat("\x00", 40), 0o600, "corrupt"},
		{"group readable", good, 0o640, "chmod 600"},
		{"world readable", good, 0o604, "chmod 600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "jwt-dev-secret")
			if err := os.WriteFile(path, []byte(tc.content), tc.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(path, tc.mode) // past the umask
			done := make(chan error, 1)
			go func() { _, err := DevSecret(path); done <- err }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("DevSecret = %v, want an error naming %s and %q", err, path, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("DevSecret did not return within 10s")
			}
			if b, _ := os.ReadFile(path); string(b) != tc.content {
				t.Fatalf("the file was rewritten to %q", b)
			}
		})
	}
}
