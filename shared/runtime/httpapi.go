// Package runtime runs the functions of template.yaml on one machine as AWS would: HTTP requests
// become API Gateway HTTP API (payload 2.0) events, Kafka batches become MSK events, new objects
// become S3 events, schedules become EventBridge invocations. Handlers receive the real
// aws-lambda-go event types and never know they are not in AWS.
package runtime

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"

	"github.com/fin-orchestrator/fin-orchestrator/shared/samtemplate"
)

// HTTPFunc is a Lambda handler for API Gateway HTTP API events.
type HTTPFunc func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// Authorizer checks a request as API Gateway's JWT authorizer would, returning the token's claims.
type Authorizer func(r *http.Request) (map[string]string, error)

// maxPayload is Lambda's synchronous invocation limit, which API Gateway enforces too.
const maxPayload = 6 << 20

// HTTPGateway serves the HttpApi routes of one function: it matches a route, applies the
// authorizer unless the route opts out, builds the payload 2.0 event and writes the response.
type HTTPGateway struct {
	Routes    []samtemplate.HTTPEvent
	Handler   HTTPFunc
	Authorize Authorizer
}

func (g *HTTPGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route, params, ok := g.match(r.Method, r.URL.Path)
	if !ok {
		writeGatewayError(w, http.StatusNotFound, "Not Found")
		return
	}
	var claims map[string]string
	if !route.NoAuth && g.Authorize != nil {
		var err error
		if claims, err = g.Authorize(r); err != nil {
			writeGatewayError(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPayload))
	if err != nil {
		writeGatewayError(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	ev := buildV2Event(r, route, params, claims, body)
	resp, err := g.Handler(r.Context(), ev)
	if err != nil {
		// API Gateway answers 500 when the integration fails; the function's error stays in its logs.
		slog.Error("function failed", "route", ev.RouteKey, "request_id", ev.RequestContext.RequestID, "err", err)
		writeGatewayError(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	writeV2Response(w, resp)
}

// match finds the route for a request: an exact path first, then a greedy {proxy+}.
func (g *HTTPGateway) match(method, path string) (samtemplate.HTTPEvent, map[string]string, bool) {
	for _, exact := range []bool{true, false} {
		for _, rt := range g.Routes {
			if rt.Method != "ANY" && rt.Method != method {
				continue
			}
			prefix, greedy := strings.CutSuffix(rt.Path, "{proxy+}")
			switch {
			case exact && !greedy && rt.Path == path:
				return rt, nil, true
			case !exact && greedy && strings.HasPrefix(path, prefix) && len(path) > len(prefix):
				return rt, map[string]string{"proxy": path[len(prefix):]}, true
			}
		}
	}
	return samtemplate.HTTPEvent{}, nil, false
}

func buildV2Event(r *http.Request, route samtemplate.HTTPEvent, params, claims map[string]string, body []byte) events.APIGatewayV2HTTPRequest {
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
	if claims != nil {
		ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: claims},
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

// ErrNoRoute is returned when a function has no HTTP routes to serve.
var ErrNoRoute = errors.New("function has no HttpApi events")
