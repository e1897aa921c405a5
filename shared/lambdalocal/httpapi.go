package lambdalocal

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"

	"github.com/fin-orchestrator/fin-orchestrator/shared/samtemplate"
)

// HTTPFunc is a Lambda handler for API Gateway HTTP API events.
type HTTPFunc func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// Authorizer checks a request as API Gateway's JWT authorizer would.
type Authorizer func(r *http.Request) (Authorization, error)

// Authorization is what an authorizer found in a valid token: its claims as API Gateway passes
// them to the function (strings), and its scopes.
type Authorization struct {
	Claims map[string]string
	Scopes []string
}

// maxPayload is Lambda's synchronous invocation limit, which API Gateway enforces too.
const maxPayload = 6 << 20

// HTTPGateway serves the HttpApi routes of one function: it matches a route, applies the
// route's authorizer, builds the payload 2.0 event and writes the response.
type HTTPGateway struct {
	routes  []gatewayRoute
	handler HTTPFunc
}

// gatewayRoute is a route with what API Gateway checks before it: authorize nil for a public one.
type gatewayRoute struct {
	samtemplate.HTTPEvent
	authorize Authorizer
	scopes    []string
}

// NewHTTPGateway serves routes with handler. Each route gets the authorizer it names in the
// template, or its HttpApi's DefaultAuthorizer, or none (Authorizer: NONE), made by
// newAuthorizer from the HttpApi's configuration; a route naming an authorizer its API does not
// declare is refused, as sam deploy refuses it.
func NewHTTPGateway(apis map[string]*samtemplate.HTTPAPI, routes []samtemplate.HTTPEvent, handler HTTPFunc,
	newAuthorizer func(samtemplate.JWTAuthorizer) (Authorizer, error)) (*HTTPGateway, error) {
	if len(routes) == 0 {
		return nil, errors.New("the function has no HttpApi events to serve")
	}
	g := &HTTPGateway{handler: handler}
	made := map[string]Authorizer{}
	for _, rt := range routes {
		api := apis[rt.APIID]
		if api == nil && rt.APIID != "" {
			return nil, fmt.Errorf("route %s (%s %s): ApiId %s is not an AWS::Serverless::HttpApi of the template", rt.Name, rt.Method, rt.Path, rt.APIID)
		}
		if api == nil {
			api = &samtemplate.HTTPAPI{} // SAM's implicit API: no authorizers
		}
		name := rt.Authorizer
		if name == "" {
			name = api.DefaultAuthorizer
		}
		gr := gatewayRoute{HTTPEvent: rt}
		if name != "" && name != "NONE" {
			cfg, ok := api.Authorizers[name]
			if !ok {
				return nil, fmt.Errorf("route %s (%s %s): authorizer %q is not declared in %s's Auth.Authorizers", rt.Name, rt.Method, rt.Path, name, api.LogicalID)
			}
			key := api.LogicalID + "/" + name
			if made[key] == nil {
				a, err := newAuthorizer(cfg)
				if err != nil {
					return nil, fmt.Errorf("%s authorizer %s: %w", api.LogicalID, name, err)
				}
				made[key] = a
			}
			gr.authorize = made[key]
			gr.scopes = rt.Scopes
			if len(gr.scopes) == 0 {
				gr.scopes = cfg.Scopes
			}
		}
		g.routes = append(g.routes, gr)
	}
	return g, nil
}

func (g *HTTPGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route, params, ok := g.match(r.Method, r.URL.Path)
	if !ok {
		writeGatewayError(w, http.StatusNotFound, "Not Found")
		return
	}
	var auth *Authorization
	if route.authorize != nil {
		a, err := route.authorize(r)
		if err != nil {
			writeGatewayError(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		// A route with scopes needs a token carrying at least one of them.
		if len(route.scopes) > 0 && !slices.ContainsFunc(a.Scopes, func(s string) bool { return slices.Contains(route.scopes, s) }) {
			writeGatewayError(w, http.StatusForbidden, "Forbidden")
			return
		}
		if len(route.scopes) == 0 {
			a.Scopes = nil // API Gateway passes scopes only for a route that requires some
		}
		auth = &a
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPayload))
	if err != nil {
		writeGatewayError(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	ev := buildV2Event(r, route.HTTPEvent, params, auth, body)
	resp, err := g.handler(r.Context(), ev)
	if err != nil {
		// API Gateway answers 500 when the integration fails; the function's error stays in its logs.
		slog.Error("function failed", "route", ev.RouteKey, "request_id", ev.RequestContext.RequestID, "err", err)
		writeGatewayError(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	writeV2Response(w, resp)
}

// match finds the route for a request as API Gateway does: a route for the exact path first,
// then the greedy {proxy+} route with the longest prefix; at each step a route for the request's
// method before an ANY route.
func (g *HTTPGateway) match(method, path string) (gatewayRoute, map[string]string, bool) {
	var best gatewayRoute
	var bestParams map[string]string
	bestRank := -1
	for _, rt := range g.routes {
		if rt.Method != "ANY" && rt.Method != method {
			continue
		}
		rank := 0
		var params map[string]string
		prefix, greedy := strings.CutSuffix(rt.Path, "{proxy+}")
		switch {
		case !greedy && rt.Path == path:
			rank = 1 << 20
		case greedy && strings.HasPrefix(path, prefix) && len(path) > len(prefix):
			rank = len(prefix) << 1
			params = map[string]string{"proxy": path[len(prefix):]}
		default:
			continue
		}
		if rt.Method != "ANY" {
			rank++
		}
		if rank > bestRank {
			best, bestParams, bestRank = rt, params, rank
		}
	}
	return best, bestParams, bestRank >= 0
}

func buildV2Event(r *http.Request, route samtemplate.HTTPEvent, params map[string]string, auth *Authorization, body []byte) events.APIGatewayV2HTTPRequest {
	headers := map[string]string{}
	var cookies []string
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		if lk == "cookie" {
			for _, v := range vs {
				for _, c := range strings.Split(v, ";") {
					cookies = append(cookies, strings.TrimSpace(c))
				}
			}
			continue
		}
		headers[lk] = strings.Join(vs, ",")
	}
	headers["host"] = r.Host
	var query map[string]string
	if len(r.URL.Query()) > 0 {
		query = map[string]string{}
		for k, vs := range r.URL.Query() {
			query[k] = strings.Join(vs, ",")
		}
	}
	now := time.Now().UTC()
	routeKey := route.Method + " " + route.Path
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: routeKey, RawPath: r.URL.EscapedPath(), RawQueryString: r.URL.RawQuery,
		Cookies: cookies, Headers: headers, QueryStringParameters: query, PathParameters: params,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: routeKey, AccountID: "000000000000", Stage: "$default", RequestID: uuid.NewString(),
			APIID: "local", DomainName: r.Host, DomainPrefix: strings.Split(r.Host, ".")[0],
			Time: now.Format("02/Jan/2006:15:04:05 -0700"), TimeEpoch: now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: r.Method, Path: r.URL.Path, Protocol: r.Proto, SourceIP: sourceIP(r), UserAgent: r.UserAgent(),
			},
		},
	}
	if auth != nil {
		ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: auth.Claims, Scopes: auth.Scopes},
		}
	}
	if len(body) > 0 {
		if utf8.Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		}
	}
	return ev
}

func sourceIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndex(host, ":"); i > 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

func writeV2Response(w http.ResponseWriter, resp events.APIGatewayV2HTTPResponse) {
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		w.Header()[http.CanonicalHeaderKey(k)] = vs
	}
	for _, c := range resp.Cookies {
		w.Header().Add("Set-Cookie", c)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			writeGatewayError(w, http.StatusBadGateway, "Bad Gateway")
			return
		}
	}
	status := resp.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	w.Write(body)
}

func writeGatewayError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"message":%q}`, msg)
}
