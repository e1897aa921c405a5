package api

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	fiberadapter "github.com/awslabs/aws-lambda-go-api-proxy/fiber"
	"github.com/gofiber/fiber/v2"
)

// LambdaHandler serves app to API Gateway: REST API (payload v1) and HTTP API (payload v2)
// events both arrive here, told apart by their "version" field.
//
// Headers named x-golambdaproxy-* are the adapter's channel for API Gateway's own context
// (authorizer claims, stage variables); a client could send them to forge that context, so every
// client-sent one is removed before the adapter adds the real ones. X-Request-Id is set to API
// Gateway's request id so logs join up with the gateway's.
func LambdaHandler(app *fiber.App) func(context.Context, json.RawMessage) (any, error) {
	v1, v2 := LambdaV1(app), LambdaV2(app)
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		var probe struct {
			Version string `json:"version"`
		}
		if err := json.Unmarshal(raw, &probe); err != nil {
			return nil, fmt.Errorf("api: decode API Gateway event: %w", err)
		}
		if probe.Version == "2.0" {
			var ev events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(raw, &ev); err != nil {
				return nil, fmt.Errorf("api: decode HTTP API event: %w", err)
			}
			return v2(ctx, ev)
		}
		var ev events.APIGatewayProxyRequest
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("api: decode REST API event: %w", err)
		}
		return v1(ctx, ev)
	}
}

// LambdaV2 serves app to HTTP API (payload 2.0) events, typed: what a local gateway that builds
// events.APIGatewayV2HTTPRequest values calls.
func LambdaV2(app *fiber.App) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	adapter := fiberadapter.New(app)
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		ev.Headers = stripProxyHeaders(ev.Headers)
		setHeader(&ev.Headers, "x-request-id", ev.RequestContext.RequestID)
		ev.RawPath = escapeControls(ev.RawPath)
		ev.RequestContext.HTTP.Path = escapeControls(ev.RequestContext.HTTP.Path)
		return adapter.ProxyWithContextV2(ctx, ev)
	}
}

// LambdaV1 serves app to REST API (payload 1.0) events, typed.
func LambdaV1(app *fiber.App) func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	adapter := fiberadapter.New(app)
	return func(ctx context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		ev.Headers = stripProxyHeaders(ev.Headers)
		ev.MultiValueHeaders = stripProxyHeaders(ev.MultiValueHeaders)
		setHeader(&ev.Headers, "X-Request-Id", ev.RequestContext.RequestID)
		ev.Path = escapeControls(ev.Path)
		// The adapter reads MultiValueHeaders alone when there are any.
		if len(ev.MultiValueHeaders) > 0 && ev.RequestContext.RequestID != "" {
			for k := range ev.MultiValueHeaders {
				if strings.EqualFold(k, "X-Request-Id") {
					delete(ev.MultiValueHeaders, k)
				}
			}
			ev.MultiValueHeaders["X-Request-Id"] = []string{ev.RequestContext.RequestID}
		}
		return adapter.ProxyWithContext(ctx, ev)
	}
}

// escapeControls percent-encodes control characters in a path API Gateway delivered decoded
// (/customers/%00 arrives as a NUL): the adapter's url.Parse refuses them, and an error from the
// handler would be a 502 at the gateway instead of the API's own 4xx problem.
func escapeControls(path string) string {
	if !strings.ContainsFunc(path, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return path
	}
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		if c := path[i]; c < 0x20 || c == 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func stripProxyHeaders[V any](h map[string]V) map[string]V {
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "x-golambdaproxy-") {
			delete(h, k)
		}
	}
	return h
}

// setHeader replaces every spelling of name with value (when value is set).
func setHeader(h *map[string]string, name, value string) {
	if value == "" {
		return
	}
	if *h == nil {
		*h = map[string]string{}
	}
	for k := range *h {
		if strings.EqualFold(k, name) {
			delete(*h, k)
		}
	}
	(*h)[name] = value
}
