package stack

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fin-orchestrator/fin-orchestrator/shared/api"
	"github.com/fin-orchestrator/fin-orchestrator/shared/lambdalocal"
	"github.com/fin-orchestrator/fin-orchestrator/shared/oidctest"
	"github.com/fin-orchestrator/fin-orchestrator/shared/pgtest"
	"github.com/fin-orchestrator/fin-orchestrator/shared/samtemplate"
)

// TestTemplateDocsArePublic serves the real API behind the gateway fin up builds from the real
// template.yaml: the docs page, its assets and every OpenAPI form answer 200 without a token, as
// the template's Authorizer: NONE routes make them in AWS; everything else needs the template's
// JWT authorizer, which takes fin token's tokens.
func TestTemplateDocsArePublic(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	auth := api.AuthConfig{Secret: []byte(strings.Repeat("x", 32)), Issuer: api.DevIssuer, Audience: api.DevAudience}
	tpl, err := samtemplate.Load("../../template.yaml", map[string]string{"Stage": "local", "JwtIssuer": auth.Issuer, "JwtAudience": auth.Audience})
	if err != nil {
		t.Fatal(err)
	}
	fn := tpl.Functions[apiFunction]
	var public []string
	for _, rt := range fn.HTTP {
		if rt.NoAuth {
			public = append(public, rt.Method+" "+rt.Path)
		}
	}
	slices.Sort(public)
	want := []string{"GET /docs", "GET /docs/{proxy+}", "GET /healthz", "GET /openapi-3.0.json", "GET /openapi-3.0.yaml", "GET /openapi.json", "GET /openapi.yaml"}
	if !slices.Equal(public, want) {
		t.Fatalf("public routes of %s: %v, want exactly %v", apiFunction, public, want)
	}

	srv := templateGateway(t, ctx, tpl, auth)
	token, err := auth.IssueToken("tester", []string{api.ScopeRead, api.ScopeService}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		method, path, token string
		status              int
		body                string // in the response
	}{
		{"GET", "/docs", "", 200, "swagger"},
		{"GET", "/docs/init.js", "", 200, ""},
		{"GET", "/docs/swagger-ui.css", "", 200, ""},
		{"GET", "/docs/swagger-ui-bundle.js", "", 200, ""},
		{"GET", "/openapi.json", "", 200, `"openapi":"3.1`},
		{"GET", "/openapi.yaml", "", 200, "openapi: 3.1"},
		{"GET", "/openapi-3.0.json", "", 200, `"openapi":"3.0`},
		{"GET", "/openapi-3.0.yaml", "", 200, "openapi: 3.0"},
		{"GET", "/healthz", "", 200, "ok"},
		{"GET", "/customers", "", 401, `{"message":"Unauthorized"}`},
		{"GET", "/accounts/00000000-0000-4000-8000-000000000000", "", 401, "Unauthorized"},
		{"POST", "/docs", "", 401, "Unauthorized"},
		{"GET", "/docsx", "", 401, "Unauthorized"},
		{"GET", "/customers", "Bearer not-a-token", 401, "Unauthorized"},
		{"GET", "/customers", "Bearer " + token, 200, `"data"`},
	}
	for _, c := range cases {
		status, body := oidctest.Send(t, c.method, srv+c.path, c.token)
		if status != c.status || !strings.Contains(strings.ToLower(body), strings.ToLower(c.body)) {
			t.Errorf("%s %s (token %v): %d %.120s, want %d with %q", c.method, c.path, c.token != "", status, body, c.status, c.body)
		}
	}
}

// templateGateway serves the real API with auth behind the gateway built from tpl as fin up
// builds it; it returns the base URL.
func templateGateway(t *testing.T, ctx context.Context, tpl *samtemplate.Template, auth api.AuthConfig) string {
	t.Helper()
	app, err := api.New(ctx, api.Config{Pool: pgtest.New(t).Pool, Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := lambdalocal.NewHTTPGateway(tpl.HTTPAPIs, tpl.Functions[apiFunction].HTTP,
		lambdalocal.NewFunction(apiFunction, api.LambdaHandler(app), 15*time.Second).HTTP(),
		func(c samtemplate.JWTAuthorizer) (lambdalocal.Authorizer, error) {
			return lambdalocal.JWTAuthorizer(ctx, c, auth.Secret)
		})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return srv.URL
}

// customerClaims adds a customer claim (one no customer has) to c.
func customerClaims(c jwt.MapClaims) jwt.MapClaims {
	c[api.DefaultCustomerClaim] = "5a4c3b2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"
	return c
}

// TestTemplateCognitoTokens: with a JWKS (FIN_JWKS_URL), fin up's gateway and the API take a
// Cognito access token by its client_id and mapped scopes; an ID token of the same pool passes the
// gateway, as it would in AWS, and the API refuses it; a token of another app client stops at the
// gateway.
func TestTemplateCognitoTokens(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	idp := oidctest.New(t)
	const client = "4k2h6q0example1clientid"
	scopes, err := api.ParseScopeMap("fin-api/read=bank:read,fin-api/write=bank:write,fin-api/service=bank:service")
	if err != nil {
		t.Fatal(err)
	}
	auth := api.AuthConfig{JWKSURL: idp.JWKSURL, Issuer: idp.Issuer, Audience: client, ScopeMap: scopes}
	tpl, err := samtemplate.Load("../../template.yaml", map[string]string{"Stage": "local", "JwtIssuer": auth.Issuer, "JwtAudience": auth.Audience})
	if err != nil {
		t.Fatal(err)
	}
	base := templateGateway(t, ctx, tpl, auth)
	cases := []struct {
		name, token string
		status      int
		body        string
	}{
		{"service access token", idp.Sign(t, idp.CognitoAccess(client, "fin-api/read fin-api/service")), 200, `"data"`},
		{"access token without the read scope", idp.Sign(t, idp.CognitoAccess(client, "fin-api/write fin-api/service")), 403, "insufficient_scope"},
		// The gateway has no route scopes (the API decides per operation), so an ordinary user's
		// token passes it, as in AWS, and the API refuses it: it names no customer.
		{"user token naming no customer: past the gateway, refused by the API", idp.Sign(t, idp.CognitoAccess(client, "fin-api/read")), 403, "bank:service"},
		{"customer token", idp.Sign(t, customerClaims(idp.CognitoAccess(client, "fin-api/read"))), 200, `"data":[]`},
		{"ID token: past the gateway, refused by the API", idp.Sign(t, idp.CognitoID(client)), 401, "token_use"},
		{"another app client: refused by the gateway", idp.Sign(t, idp.CognitoAccess("other-client", "fin-api/read")), 401, `{"message":"Unauthorized"}`},
	}
	for _, c := range cases {
		status, body := oidctest.Send(t, "GET", base+"/customers", "Bearer "+c.token)
		if status != c.status || !strings.Contains(body, c.body) {
			t.Errorf("%s: %d %.160s, want %d with %q", c.name, status, body, c.status, c.body)
		}
	}
	if status, _ := oidctest.Send(t, "GET", base+"/docs", ""); status != 200 {
		t.Errorf("/docs without a token: %d", status)
	}
}
