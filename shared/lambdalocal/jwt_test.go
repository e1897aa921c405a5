package lambdalocal

import (
	"context"
	"crypto/x509"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fin-orchestrator/fin-orchestrator/shared/oidctest"
	"github.com/fin-orchestrator/fin-orchestrator/shared/samtemplate"
)

// TestJWTAuthorizer: the emulated authorizer finds the issuer's keys by OIDC discovery and
// decides as API Gateway documents, passing ID tokens (API Gateway cannot tell them apart; the
// API refuses them) and refusing what API Gateway refuses.
func TestJWTAuthorizer(t *testing.T) {
	idp := oidctest.New(t)
	const client = "4k2h6q0example1clientid"
	cfg := samtemplate.JWTAuthorizer{IdentitySource: "$request.header.Authorization", Issuer: idp.Issuer, Audience: []string{client, "https://api.fin.example"}}
	authorize, err := JWTAuthorizer(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("authorizer: %v", err)
	}
	with := func(c jwt.MapClaims, k string, v any) jwt.MapClaims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	access := func() jwt.MapClaims { return idp.CognitoAccess(client, "fin-api/read fin-api/write") }
	now := time.Now()
	pub, _ := x509.MarshalPKIXPublicKey(&idp.Key.PublicKey)
	cases := []struct {
		name, header string
		ok           bool
	}{
		{"cognito access token", "Bearer " + idp.Sign(t, access()), true},
		{"token without Bearer", idp.Sign(t, access()), true},
		{"cognito ID token (aud is the client)", "Bearer " + idp.Sign(t, idp.CognitoID(client)), true},
		{"auth0 access token", "Bearer " + idp.Sign(t, idp.Auth0Access("https://api.fin.example", "bank:read")), true},
		{"no token", "", false},
		{"another app client", "Bearer " + idp.Sign(t, idp.CognitoAccess("other-client", "fin-api/read")), false},
		{"aud wins over client_id", "Bearer " + idp.Sign(t, with(access(), "aud", "other-api")), false},
		{"neither aud nor client_id", "Bearer " + idp.Sign(t, with(access(), "client_id", nil)), false},
		{"wrong issuer", "Bearer " + idp.Sign(t, with(access(), "iss", "https://elsewhere.example")), false},
		{"expired a second ago", "Bearer " + idp.Sign(t, with(access(), "exp", now.Add(-time.Second).Unix())), false},
		{"no exp", "Bearer " + idp.Sign(t, with(access(), "exp", nil)), false},
		{"nbf ahead", "Bearer " + idp.Sign(t, with(access(), "nbf", now.Add(time.Minute).Unix())), false},
		{"iat ahead", "Bearer " + idp.Sign(t, with(access(), "iat", now.Add(time.Minute).Unix())), false},
		{"unknown kid", "Bearer " + oidctest.SignWith(t, jwt.SigningMethodRS256, idp.Key, "other", access()), false},
		{"HS256 keyed with the public key", "Bearer " + oidctest.SignWith(t, jwt.SigningMethodHS256, pub, oidctest.KeyID, access()), false},
	}
	for _, c := range cases {
		r, _ := http.NewRequest("GET", "/customers", nil)
		if c.header != "" {
			r.Header.Set("Authorization", c.header)
		}
		_, err := authorize(r)
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v, want accepted=%v", c.name, err, c.ok)
		}
	}
	// The claims reach the function as strings, numbers as written (not 1.7e+09).
	claims := access()
	r, _ := http.NewRequest("GET", "/customers", nil)
	r.Header.Set("Authorization", "Bearer "+idp.Sign(t, claims))
	a, err := authorize(r)
	if err != nil || a.Claims["client_id"] != client || strings.Join(a.Scopes, " ") != "fin-api/read fin-api/write" ||
		a.Claims["exp"] != strconv.FormatInt(claims["exp"].(int64), 10) || a.Claims["token_use"] != "access" {
		t.Errorf("claims %v scopes %v (%v): not as API Gateway passes them", a.Claims, a.Scopes, err)
	}

	// Locally, the development secret signs (HS256); the claims are checked the same.
	secret := []byte(strings.Repeat("k", 32))
	local, err := JWTAuthorizer(context.Background(), samtemplate.JWTAuthorizer{IdentitySource: "$request.header.Authorization", Issuer: "fin-orchestrator-local", Audience: []string{"fin-local"}}, secret)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		claims jwt.MapClaims
		ok     bool
	}{
		"local token":       {jwt.MapClaims{"iss": "fin-orchestrator-local", "client_id": "fin-local", "sub": "dev", "exp": now.Add(time.Hour).Unix()}, true},
		"another issuer":    {jwt.MapClaims{"iss": "someone", "client_id": "fin-local", "sub": "dev", "exp": now.Add(time.Hour).Unix()}, false},
		"no client or aud":  {jwt.MapClaims{"iss": "fin-orchestrator-local", "sub": "dev", "exp": now.Add(time.Hour).Unix()}, false},
		"RS256, not secret": {with(idp.CognitoAccess("fin-local", ""), "iss", "fin-orchestrator-local"), false},
	} {
		var tok string
		if name == "RS256, not secret" {
			tok = idp.Sign(t, c.claims)
		} else {
			tok = oidctest.SignWith(t, jwt.SigningMethodHS256, secret, "", c.claims)
		}
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		if _, err := local(r); (err == nil) != c.ok {
			t.Errorf("local %s: err %v, want accepted=%v", name, err, c.ok)
		}
	}

	// What API Gateway's CreateAuthorizer refuses, or a provider it could not reach, stops the start.
	for name, c := range map[string]samtemplate.JWTAuthorizer{
		"no issuer":          {IdentitySource: "$request.header.Authorization", Audience: []string{client}},
		"no audience":        {IdentitySource: "$request.header.Authorization", Issuer: idp.Issuer},
		"empty audience":     {IdentitySource: "$request.header.Authorization", Issuer: idp.Issuer, Audience: []string{""}},
		"query string token": {IdentitySource: "$request.querystring.token", Issuer: idp.Issuer, Audience: []string{client}},
		"no discovery":       {IdentitySource: "$request.header.Authorization", Issuer: idp.Issuer + "/nowhere", Audience: []string{client}},
	} {
		if _, err := JWTAuthorizer(context.Background(), c, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
