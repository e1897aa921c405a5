package api

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fin-orchestrator/fin-orchestrator/shared/oidctest"
)

const cognitoClient = "4k2h6q0example1clientid"

// providerVerifier is the API's verifier against a local identity provider, configured as for
// Cognito: the app client id as audience, the resource server's scopes mapped.
func providerVerifier(t *testing.T, idp *oidctest.Provider, audience string) *verifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m, err := ParseScopeMap("fin-api/read=bank:read, fin-api/write=bank:write, fin-api/admin=bank:read, fin-api/admin=bank:write")
	if err != nil {
		t.Fatal(err)
	}
	v, err := newVerifier(ctx, AuthConfig{JWKSURL: idp.JWKSURL, Issuer: idp.Issuer, Audience: audience, ScopeMap: m})
	if err != nil {
		t.Fatalf("verifier with JWKS: %v", err)
	}
	return v
}

// TestIdentityProviders verifies tokens shaped as Cognito and Auth0 issue them against keys
// served at a JWKS URL, and refuses what API Gateway's JWT authorizer refuses plus ID tokens.
func TestIdentityProviders(t *testing.T) {
	idp := oidctest.New(t)
	cognito := providerVerifier(t, idp, cognitoClient)
	auth0 := providerVerifier(t, idp, "https://api.fin.example")
	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&idp.Key.PublicKey)
	with := func(c jwt.MapClaims, kv ...any) jwt.MapClaims {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	access := func(scope string) jwt.MapClaims { return idp.CognitoAccess(cognitoClient, scope) }
	now := time.Now()
	cases := []struct {
		name    string
		v       *verifier
		token   string
		subject string   // "" when the token must be refused
		scopes  []string // API scopes it must grant (and no others)
		reason  string   // in the refusal
	}{
		{"cognito access, read scope", cognito, idp.Sign(t, access("fin-api/read")), "0f3c9a4e-5b1d-4c8e-9a7f-2d6b8e1c4a90", []string{ScopeRead}, ""},
		{"cognito access, read and write", cognito, idp.Sign(t, access("openid fin-api/read fin-api/write")), "0f3c9a4e-5b1d-4c8e-9a7f-2d6b8e1c4a90", []string{ScopeRead, ScopeWrite}, ""},
		{"cognito access, one scope granting both", cognito, idp.Sign(t, access("fin-api/admin")), "0f3c9a4e-5b1d-4c8e-9a7f-2d6b8e1c4a90", []string{ScopeRead, ScopeWrite}, ""},
		{"cognito client credentials, sub is the client", cognito, idp.Sign(t, with(access("fin-api/write"), "sub", cognitoClient, "username", nil)), cognitoClient, []string{ScopeWrite}, ""},
		{"cognito access, unmapped scope", cognito, idp.Sign(t, access("other-api/read aws.cognito.signin.user.admin")), "0f3c9a4e-5b1d-4c8e-9a7f-2d6b8e1c4a90", nil, ""},
		{"cognito ID token", cognito, idp.Sign(t, idp.CognitoID(cognitoClient)), "", nil, "token_use"},
		{"cognito token_use refresh", cognito, idp.Sign(t, with(access("fin-api/read"), "token_use", "refresh")), "", nil, "token_use"},
		{"cognito access, another app client", cognito, idp.Sign(t, idp.CognitoAccess("another-client", "fin-api/read")), "", nil, "client_id"},
		{"cognito access, no client_id", cognito, idp.Sign(t, with(access("fin-api/read"), "client_id", nil)), "", nil, "client_id"},
		{"aud wins over client_id", cognito, idp.Sign(t, with(access("fin-api/read"), "aud", "another-api")), "", nil, "aud"},
		{"expired", cognito, idp.Sign(t, with(access("fin-api/read"), "exp", now.Add(-2*time.Minute).Unix())), "", nil, "expired"},
		{"no exp", cognito, idp.Sign(t, with(access("fin-api/read"), "exp", nil)), "", nil, "exp"},
		{"not yet valid (nbf)", cognito, idp.Sign(t, with(access("fin-api/read"), "nbf", now.Add(5*time.Minute).Unix())), "", nil, "not valid yet"},
		{"issued in the future (iat)", cognito, idp.Sign(t, with(access("fin-api/read"), "iat", now.Add(5*time.Minute).Unix())), "", nil, "used before issued"},
		{"wrong issuer", cognito, idp.Sign(t, with(access("fin-api/read"), "iss", "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_OTHER")), "", nil, "issuer"},
		{"no issuer", cognito, idp.Sign(t, with(access("fin-api/read"), "iss", nil)), "", nil, "iss"},
		{"signed by another key", cognito, oidctest.SignWith(t, jwt.SigningMethodRS256, stranger, oidctest.KeyID, access("fin-api/read")), "", nil, "signature"},
		{"HS256 keyed with the public key", cognito, oidctest.SignWith(t, jwt.SigningMethodHS256, pub, oidctest.KeyID, access("fin-api/read")), "", nil, "signing method"},
		{"unknown key id", cognito, oidctest.SignWith(t, jwt.SigningMethodRS256, idp.Key, "k2", access("fin-api/read")), "", nil, "key"},
		{"auth0 scope and permissions", auth0, idp.Sign(t, idp.Auth0Access("https://api.fin.example", "bank:read", "bank:write")), "auth0|65a1b2c3d4", []string{ScopeRead, ScopeWrite}, ""},
		{"auth0 aud as one string", auth0, idp.Sign(t, with(idp.Auth0Access("", "bank:read"), "aud", "https://api.fin.example")), "auth0|65a1b2c3d4", []string{ScopeRead}, ""},
		{"auth0 machine to machine", auth0, idp.Sign(t, with(idp.Auth0Access("https://api.fin.example", "bank:write"), "sub", "m2m@clients", "gty", "client-credentials")), "m2m@clients", []string{ScopeWrite}, ""},
		{"auth0 token for another API", auth0, idp.Sign(t, idp.Auth0Access("https://other.example", "bank:read")), "", nil, "aud"},
		{"auth0 ID token (aud is the SPA client)", auth0, idp.Sign(t, with(idp.Auth0Access("spa-client", ""), "nonce", "n")), "", nil, "aud"},
		{"scp as a list", auth0, idp.Sign(t, with(idp.Auth0Access("https://api.fin.example", ""), "scp", []string{"bank:read"})), "auth0|65a1b2c3d4", []string{ScopeRead}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := c.v.verify("Bearer " + c.token)
			if c.subject == "" {
				if err == nil {
					t.Fatalf("accepted as %+v", p)
				}
				if !strings.Contains(err.Error(), c.reason) {
					t.Fatalf("refused with %q, want the reason to mention %q", err, c.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if p.Subject != c.subject {
				t.Errorf("subject %q, want %q", p.Subject, c.subject)
			}
			for _, s := range []string{ScopeRead, ScopeWrite} {
				if want := slices.Contains(c.scopes, s); p.Scopes[s] != want {
					t.Errorf("scope %s granted %v, want %v (scopes %v)", s, p.Scopes[s], want, p.Scopes)
				}
			}
		})
	}
}

// TestCognitoThroughTheAPI: a Cognito access token reaches the operations with the API scopes its
// resource-server scopes map to; an ID token of the same pool is 401; a user's access token with
// neither the service scope nor a customer claim is 403; one whose customer claim (named by
// CustomerClaim, as a pre-token-generation trigger adds it) names a customer sees that one alone.
func TestCognitoThroughTheAPI(t *testing.T) {
	idp := oidctest.New(t)
	scopes, _ := ParseScopeMap("fin-api/read=bank:read,fin-api/write=bank:write,fin-api/service=bank:service")
	e := newEnv(t, func(c *Config) {
		c.Auth = AuthConfig{JWKSURL: idp.JWKSURL, Issuer: idp.Issuer, Audience: cognitoClient, ScopeMap: scopes,
			CustomerClaim: "custom:customer_id"}
	})
	reader := idp.Sign(t, idp.CognitoAccess(cognitoClient, "fin-api/read fin-api/service"))
	writer := idp.Sign(t, idp.CognitoAccess(cognitoClient, "fin-api/read fin-api/write fin-api/service"))
	user := idp.Sign(t, idp.CognitoAccess(cognitoClient, "openid fin-api/read fin-api/write"))
	id := idp.Sign(t, idp.CognitoID(cognitoClient))
	create := request{method: "POST", path: "/customers", body: map[string]any{"first_name": "Ada", "last_name": "Cognito", "email": "ada.cognito@example.com"}}
	for _, tr := range e.transports {
		t.Run(tr.name, func(t *testing.T) {
			create.body.(map[string]any)["email"] = "ada." + tr.name + "@example.com"
			r := create
			r.token = reader
			call(t, tr, r, http.StatusForbidden)
			r.token = id
			call(t, tr, r, http.StatusUnauthorized)
			r.token = user
			if p := problemOf(t, call(t, tr, r, http.StatusForbidden)); p.Code != "insufficient_scope" || !strings.Contains(p.Detail, "custom:customer_id") {
				t.Fatalf("a user token without a customer: %+v, want insufficient_scope naming the claim", p)
			}
			r.token = writer
			var c Customer
			call(t, tr, r, http.StatusCreated).json(t, &c)
			call(t, tr, request{method: "GET", path: "/customers", token: reader}, http.StatusOK)
			call(t, tr, request{method: "GET", path: "/customers", token: id}, http.StatusUnauthorized)
			call(t, tr, request{method: "GET", path: "/customers", token: user}, http.StatusForbidden)
			claims := idp.CognitoAccess(cognitoClient, "fin-api/read")
			claims["custom:customer_id"] = c.CustomerID
			mine := idp.Sign(t, claims)
			var list List[Customer]
			call(t, tr, request{method: "GET", path: "/customers", token: mine}, http.StatusOK).json(t, &list)
			if len(list.Data) != 1 || list.Data[0].CustomerID != c.CustomerID {
				t.Fatalf("a customer token listed %+v, want its customer %s alone", list.Data, c.CustomerID)
			}
		})
	}
}
