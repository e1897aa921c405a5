package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/fin-orchestrator/fin-orchestrator/shared/samtemplate"
)

func TestHTTPGateway(t *testing.T) {
	var got events.APIGatewayV2HTTPRequest
	gw := &HTTPGateway{
		Routes: []samtemplate.HTTPEvent{{Path: "/healthz", Method: "GET", NoAuth: true}, {Path: "/{proxy+}", Method: "ANY"}},
		Handler: func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			got = ev
			if ev.RawPath == "/boom" {
				return events.APIGatewayV2HTTPResponse{}, errors.New("boom")
			}
			return events.APIGatewayV2HTTPResponse{StatusCode: 201, Headers: map[string]string{"Content-Type": "application/json"},
				Cookies: []string{"a=b"}, Body: `{"ok":true}`}, nil
		},
		Authorize: func(r *http.Request) (map[string]string, error) {
			if r.Header.Get("Authorization") != "Bearer good" {
				return nil, errors.New("no")
			}
			return map[string]string{"scope": "bank:read"}, nil
		},
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
		got.IsBase64Encoded || got.RequestContext.HTTP.Method != "POST" || got.RequestContext.Authorizer.JWT.Claims["scope"] != "bank:read" {
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
