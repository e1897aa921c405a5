package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gofiber/fiber/v2"

	"github.com/fin-orchestrator/fin-orchestrator/shared/pgtest"
)

// request is one HTTP call a test makes; body is sent as JSON unless it is a string or []byte.
type request struct {
	method, path string
	body         any
	token        string
	header       map[string]string
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into v, failing the test with the body shown when it cannot.
func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode response %d %s: %v", r.status, r.body, err)
	}
}

// transport sends a request to the app one way: a real local HTTP server, or a Lambda event.
type transport struct {
	name string
	do   func(t testing.TB, r request) response
}

// env is one API on its own fresh database, reachable through every transport.
type env struct {
	db         *pgtest.DB
	app        *fiber.App
	secret     []byte
	rw, ro, wo string // service tokens: read+write, read only, write only
	transports []transport
	client     *http.Client // the HTTP transport's client and server address
	base       string
}

// newEnv starts the API; opts adjust its Config (a History, say).
func newEnv(t *testing.T, opts ...func(*Config)) *env {
	t.Helper()
	db := pgtest.New(t)
	secret := make([]byte, 32)
	rand.Read(secret)
	ctx, cancel := context.WithCancel(context.Background())
	cfg := Config{Pool: db.Pool, Auth: AuthConfig{Secret: secret}}
	for _, o := range opts {
		o(&cfg)
	}
	app, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("api.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, app, ln) }()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: time.Minute}
	t.Cleanup(func() {
		// Idle keep-alive connections would hold the graceful shutdown until they time out.
		client.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server did not shut down cleanly: %v", err)
		}
	})
	e := &env{db: db, app: app, secret: secret, client: client, base: "http://" + ln.Addr().String()}
	e.rw = e.token(t, "tester", ScopeRead, ScopeWrite)
	e.ro = e.token(t, "tester", ScopeRead)
	e.wo = e.token(t, "tester", ScopeWrite)
	handler := LambdaHandler(app)
	e.transports = []transport{
		{"http", func(t testing.TB, r request) response { return doHTTP(t, e.client, e.base, r) }},
		{"lambda-v1", func(t testing.TB, r request) response { return doLambdaV1(t, handler, r) }},
		{"lambda-v2", func(t testing.TB, r request) response { return doLambdaV2(t, handler, r) }},
	}
	return e
}

// token is a service token for subject: scopes and ScopeService.
func (e *env) token(t testing.TB, subject string, scopes ...string) string {
	t.Helper()
	tok, err := IssueToken(e.secret, subject, append(scopes, ScopeService), time.Hour)
	if err != nil {
		t.Fatalf("issue token: %v", err)
	}
	return tok
}

func encodeBody(t testing.TB, body any) []byte {
	t.Helper()
	switch b := body.(type) {
	case nil:
		return nil
	case string:
		return []byte(b)
	case []byte:
		return b
	}
	out, err := json.Marshal(body)
	if err != nil {
		t.Fatalf("encode request body: %v", err)
	}
	return out
}

func requestHeaders(t testing.TB, r request) map[string]string {
	t.Helper()
	h := map[string]string{}
	if r.body != nil {
		h["Content-Type"] = "application/json"
	}
	if r.token != "" {
		h["Authorization"] = "Bearer " + r.token
	}
	for k, v := range r.header {
		h[k] = v
	}
	return h
}

func doHTTP(t testing.TB, client *http.Client, base string, r request) response {
	t.Helper()
	res, err := tryHTTP(t, client, base, r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	return res
}

// tryHTTP is doHTTP returning the transport's error instead of failing the test.
func tryHTTP(t testing.TB, client *http.Client, base string, r request) (response, error) {
	t.Helper()
	req, err := http.NewRequest(r.method, base+r.path, bytes.NewReader(encodeBody(t, r.body)))
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	for k, v := range requestHeaders(t, r) {
		req.Header.Set(k, v)
	}
	res, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read response of %s %s: %v", r.method, r.path, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: body}, nil
}

// invoke sends an event to the Lambda handler as the runtime would: as JSON bytes.
func invoke[R any](t testing.TB, h func(context.Context, json.RawMessage) (any, error), ev any) R {
	t.Helper()
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatalf("encode event: %v", err)
	}
	out, err := h(context.Background(), raw)
	if err != nil {
		t.Fatalf("lambda handler: %v", err)
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatalf("encode lambda response: %v", err)
	}
	var res R
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("decode lambda response %s: %v", b, err)
	}
	return res
}

func splitPath(t testing.TB, p string) (string, url.Values) {
	t.Helper()
	u, err := url.Parse(p)
	if err != nil {
		t.Fatalf("parse path %q: %v", p, err)
	}
	return u.Path, u.Query()
}

func lambdaBody(t testing.TB, body string, b64 bool) []byte {
	t.Helper()
	if !b64 {
		return []byte(body)
	}
	out, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		t.Fatalf("decode base64 lambda body: %v", err)
	}
	return out
}

func doLambdaV1(t testing.TB, h func(context.Context, json.RawMessage) (any, error), r request) response {
	t.Helper()
	path, q := splitPath(t, r.path)
	ev := events.APIGatewayProxyRequest{
		Resource: "/{proxy+}", Path: path, HTTPMethod: r.method, Headers: requestHeaders(t, r),
		Body: string(encodeBody(t, r.body)),
		RequestContext: events.APIGatewayProxyRequestContext{RequestID: "v1-" + newRequestID(), Stage: "test",
			Identity: events.APIGatewayRequestIdentity{SourceIP: "198.51.100.7"}, HTTPMethod: r.method, Path: path},
	}
	if len(q) > 0 {
		ev.QueryStringParameters = map[string]string{}
		ev.MultiValueQueryStringParameters = map[string][]string(q)
		for k, v := range q {
			ev.QueryStringParameters[k] = v[len(v)-1]
		}
	}
	res := invoke[events.APIGatewayProxyResponse](t, h, ev)
	return response{status: res.StatusCode, header: mergeHeaders(res.Headers, res.MultiValueHeaders),
		body: lambdaBody(t, res.Body, res.IsBase64Encoded)}
}

func doLambdaV2(t testing.TB, h func(context.Context, json.RawMessage) (any, error), r request) response {
	t.Helper()
	path, q := splitPath(t, r.path)
	headers := map[string]string{}
	for k, v := range requestHeaders(t, r) {
		headers[strings.ToLower(k)] = v // HTTP APIs deliver header names in lower case
	}
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "$default", RawPath: path, RawQueryString: q.Encode(), Headers: headers,
		Body: string(encodeBody(t, r.body)),
		RequestContext: events.APIGatewayV2HTTPRequestContext{RequestID: "v2-" + newRequestID(), Stage: "$default",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: r.method, Path: path, SourceIP: "198.51.100.7"}},
	}
	res := invoke[events.APIGatewayV2HTTPResponse](t, h, ev)
	return response{status: res.StatusCode, header: mergeHeaders(res.Headers, res.MultiValueHeaders),
		body: lambdaBody(t, res.Body, res.IsBase64Encoded)}
}

// expect fails the test unless res has the wanted status; a problem body must be problem+json.
func expect(t testing.TB, r request, res response, want int) {
	t.Helper()
	if res.status != want {
		t.Fatalf("%s %s: status %d, want %d; body: %s", r.method, r.path, res.status, want, res.body)
	}
	if want >= 400 {
		if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
			t.Fatalf("%s %s: error answered with Content-Type %q, want application/problem+json; body: %s", r.method, r.path, ct, res.body)
		}
	}
}

// call sends r through tr and checks the status.
func call(t testing.TB, tr transport, r request, want int) response {
	t.Helper()
	res := tr.do(t, r)
	expect(t, r, res, want)
	return res
}

// problemOf decodes a problem body.
func problemOf(t testing.TB, res response) Problem {
	t.Helper()
	var p Problem
	res.json(t, &p)
	return p
}

// mergeHeaders joins a Lambda response's single- and multi-value headers; multi-value wins.
func mergeHeaders(single map[string]string, multi map[string][]string) http.Header {
	hdr := http.Header{}
	for k, v := range single {
		hdr.Set(k, v)
	}
	for k, vs := range multi {
		hdr.Del(k)
		for _, v := range vs {
			hdr.Add(k, v)
		}
	}
	return hdr
}
