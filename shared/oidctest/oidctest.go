// Package oidctest is a local OpenID Connect provider for tests: an RSA signing key, its JWKS and
// the discovery document served over HTTP, tokens shaped as Cognito and Auth0 issue them, and a
// client that presents them.
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// KeyID is the kid of the provider's signing key.
const KeyID = "test-key-1"

// Provider serves /.well-known/openid-configuration and /.well-known/jwks.json; its Issuer is
// its base URL, as Cognito's is.
type Provider struct {
	Issuer, JWKSURL string
	Key             *rsa.PrivateKey
}

// New starts a provider, stopped when the test ends.
func New(t testing.TB) *Provider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{Key: key}
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": KeyID, "alg": "RS256", "use": "sig",
		"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
	}}})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwks)
	})
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"issuer": p.Issuer, "jwks_uri": p.JWKSURL,
			"id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p.Issuer, p.JWKSURL = srv.URL, srv.URL+"/.well-known/jwks.json"
	return p
}

// Sign signs claims with the provider's key (RS256, its kid).
func (p *Provider) Sign(t testing.TB, c jwt.MapClaims) string {
	t.Helper()
	return SignWith(t, jwt.SigningMethodRS256, p.Key, KeyID, c)
}

// SignWith signs claims with any method, key and kid: forgeries.
func SignWith(t testing.TB, m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign token: %v", err)
	}
	return s
}

// CognitoAccess is a Cognito user pool access token's claims: client_id and no aud, token_use
// "access", resource-server scopes in a space-separated scope, valid for an hour from now.
func (p *Provider) CognitoAccess(clientID, scope string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"sub": "0f3c9a4e-5b1d-4c8e-9a7f-2d6b8e1c4a90", "iss": p.Issuer, "client_id": clientID,
		"origin_jti": "a1", "event_id": "e1", "token_use": "access", "scope": scope,
		"auth_time": now.Unix(), "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "j1",
		"username": "ada", "version": 2}
}

// CognitoID is a Cognito ID token's claims: aud is the app client id, token_use "id".
func (p *Provider) CognitoID(clientID string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"sub": "0f3c9a4e-5b1d-4c8e-9a7f-2d6b8e1c4a90", "iss": p.Issuer, "aud": clientID,
		"token_use": "id", "cognito:username": "ada", "email": "ada@example.com", "email_verified": true,
		"auth_time": now.Unix(), "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "j2"}
}

// Auth0Access is an Auth0 access token's claims for an API: aud a list (the API identifier and
// the userinfo endpoint), scope, and RBAC permissions.
func (p *Provider) Auth0Access(audience, scope string, permissions ...string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"sub": "auth0|65a1b2c3d4", "iss": p.Issuer, "aud": []string{audience, p.Issuer + "/userinfo"},
		"azp": "spa-client", "scope": scope, "permissions": permissions,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
}

// Send makes a request with authorization as its Authorization header (none when empty) and
// returns the response's status and body.
func Send(t testing.TB, method, url, authorization string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
