package lambdalocal

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/fin-orchestrator/fin-orchestrator/shared/oidctest"
	"github.com/fin-orchestrator/fin-orchestrator/shared/samtemplate"
)

func TestHTTPGateway(t *testing.T) {
	var got events.APIGatewayV2HTTPRequest
	apis := map[string]*samtemplate.HTTPAPI{"Api": {LogicalID: "Api", DefaultAuthorizer: "Jwt",
		Authorizers: map[string]samtemplate.JWTAuthorizer{"Jwt": {}}}}
	routes := []samtemplate.HTTPEvent{{Path: "/healthz", Method: "GET", APIID: "Api", Authorizer: "NONE"}, {Path: "/{proxy+}", Method: "ANY", APIID: "Api"}}
	gw, err := NewHTTPGateway(apis, routes,
		func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			got = ev
			if ev.RawPath == "/boom" {
				return events.APIGatewayV2HTTPResponse{}, errors.New("boom")
			}
			return events.APIGatewayV2HTTPResponse{StatusCode: 201, Headers: map[string]string{"Content-Type": "application/json"},
				Cookies: []string{"a=b"}, Body: `{"ok":true}`}, nil
		}, fakeAuthorizer)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()

	do := func(method, path, auth, body string) (*http.Response, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		req.Header.Add("X-Multi", "1")
		req.Header.Add("X-Multi", "2")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}

	if resp, _ := do("GET", "/healthz", "", ""); resp.StatusCode != 201 || got.RouteKey != "GET /healthz" || got.RequestContext.Authorizer != nil {
		t.Fatalf("health route without auth: %d %+v", resp.StatusCode, got)
	}
	if resp, body := do("GET", "/customers", "", ""); resp.StatusCode != 401 || !strings.Contains(body, "Unauthorized") {
		t.Fatalf("protected route without token: %d %s", resp.StatusCode, body)
	}
	resp, body := do("POST", "/customers/x?limit=5&a=1&a=2", "Bearer good", `{"first_name":"Zoë"}`)
	if resp.StatusCode != 201 || body != `{"ok":true}` || resp.Header.Get("Set-Cookie") != "a=b" {
		t.Fatalf("response not passed through: %d %s %v", resp.StatusCode, body, resp.Header)
	}
	if got.RouteKey != "ANY /{proxy+}" || got.PathParameters["proxy"] != "customers/x" || got.RawPath != "/customers/x" ||
		got.QueryStringParameters["a"] != "1,2" || got.Headers["x-multi"] != "1,2" || got.Body != `{"first_name":"Zoë"}` ||
		got.IsBase64Encoded || got.RequestContext.HTTP.Method != "POST" || got.RequestContext.Authorizer.JWT.Claims["scope"] != "bank:read" ||
		got.RequestContext.Authorizer.JWT.Scopes != nil {
		b, _ := json.MarshalIndent(got, "", " ")
		t.Fatalf("event not as API Gateway builds it:\n%s", b)
	}
	if resp, _ := do("GET", "/boom", "Bearer good", ""); resp.StatusCode != 500 {
		t.Fatalf("failing function answered %d, want 500", resp.StatusCode)
	}
	do("PUT", "/bin", "Bearer good", "\xff\xfe")
	if !got.IsBase64Encoded || got.Body != "//4=" {
		t.Fatalf("binary body not base64: %+v", got)
	}
}

// fakeAuthorizer accepts "Bearer good" (scope bank:read) and "Bearer writer" (bank:write).
func fakeAuthorizer(samtemplate.JWTAuthorizer) (Authorizer, error) {
	return func(r *http.Request) (Authorization, error) {
		switch r.Header.Get("Authorization") {
		case "Bearer good":
			return Authorization{Claims: map[string]string{"scope": "bank:read"}, Scopes: []string{"bank:read"}}, nil
		case "Bearer writer":
			return Authorization{Claims: map[string]string{"scope": "bank:write"}, Scopes: []string{"bank:write"}}, nil
		}
		return Authorization{}, errors.New("no")
	}, nil
}

// TestHTTPGatewayRouting: API Gateway's route selection (exact path, then the longest greedy
// prefix; a route for the method before ANY), route scopes, and the template errors sam refuses.
func TestHTTPGatewayRouting(t *testing.T) {
	apis := map[string]*samtemplate.HTTPAPI{"Api": {LogicalID: "Api", DefaultAuthorizer: "Jwt",
		Authorizers: map[string]samtemplate.JWTAuthorizer{"Jwt": {}, "Writers": {Scopes: []string{"bank:write"}}}}}
	routes := []samtemplate.HTTPEvent{
		{Name: "All", Path: "/{proxy+}", Method: "ANY", APIID: "Api"},
		{Name: "Docs", Path: "/docs", Method: "GET", APIID: "Api", Authorizer: "NONE"},
		{Name: "DocsAssets", Path: "/docs/{proxy+}", Method: "GET", APIID: "Api", Authorizer: "NONE"},
		{Name: "DeepAssets", Path: "/docs/deep/{proxy+}", Method: "ANY", APIID: "Api"},
		{Name: "ReadScoped", Path: "/scoped", Method: "GET", APIID: "Api", Scopes: []string{"bank:read", "other"}},
		{Name: "WriterDefault", Path: "/write", Method: "ANY", APIID: "Api", Authorizer: "Writers"},
	}
	var got events.APIGatewayV2HTTPRequest
	gw, err := NewHTTPGateway(apis, routes, func(_ context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		got = ev
		return events.APIGatewayV2HTTPResponse{StatusCode: 200}, nil
	}, fakeAuthorizer)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		method, path, token string
		status              int
		route               string
	}{
		{"GET", "/docs", "", 200, "GET /docs"},
		{"GET", "/docs/swagger-ui.css", "", 200, "GET /docs/{proxy+}"},
		{"POST", "/docs", "", 401, ""},         // ANY /{proxy+}: only GET is public
		{"POST", "/docs/init.js", "", 401, ""}, // likewise
		{"GET", "/docs/deep/x", "", 401, ""},   // the longer greedy prefix wins
		{"GET", "/docs/deep/x", "Bearer good", 200, "ANY /docs/deep/{proxy+}"},
		{"GET", "/docsx", "", 401, ""},               // not under /docs/
		{"GET", "/customers", "", 401, ""},           // the default authorizer
		{"GET", "/customers", "Bearer bad", 401, ""}, // refused by it
		{"GET", "/customers", "Bearer good", 200, "ANY /{proxy+}"},
		{"GET", "/scoped", "Bearer good", 200, "GET /scoped"},
		{"GET", "/scoped", "Bearer writer", 403, ""}, // none of the route's scopes
		{"POST", "/write", "Bearer good", 403, ""},   // the authorizer's own scopes apply
		{"POST", "/write", "Bearer writer", 200, "ANY /write"},
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	for _, c := range cases {
		got = events.APIGatewayV2HTTPRequest{}
		status, body := oidctest.Send(t, c.method, srv.URL+c.path, c.token)
		if status != c.status || got.RouteKey != c.route {
			t.Errorf("%s %s (%q): %d %s via route %q, want %d via %q", c.method, c.path, c.token, status, body, got.RouteKey, c.status, c.route)
		}
		if c.route == "GET /scoped" && !slices.Equal(got.RequestContext.Authorizer.JWT.Scopes, []string{"bank:read"}) {
			t.Errorf("scoped route's event carries scopes %v", got.RequestContext.Authorizer.JWT.Scopes)
		}
	}

	bad := []struct {
		name   string
		routes []samtemplate.HTTPEvent
		want   string
	}{
		{"undeclared authorizer", []samtemplate.HTTPEvent{{Name: "R", Path: "/x", Method: "GET", APIID: "Api", Authorizer: "Missing"}}, `authorizer "Missing" is not declared`},
		{"unknown API", []samtemplate.HTTPEvent{{Name: "R", Path: "/x", Method: "GET", APIID: "Elsewhere"}}, "ApiId Elsewhere"},
		{"no routes", nil, "no HttpApi events"},
	}
	for _, b := range bad {
		if _, err := NewHTTPGateway(apis, b.routes, nil, fakeAuthorizer); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: %v, want an error containing %q", b.name, err, b.want)
		}
	}
}
