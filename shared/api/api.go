// Package api is the banking REST API of the system of record: customers, accounts and
// transactions over the bank domain, described by OpenAPI 3.1 (Huma v2 on Fiber v2), with bearer
// JWT scopes, idempotent writes, ETags and RFC 9457 problems. The same *fiber.App serves locally
// (Serve) and in Lambda behind API Gateway (LambdaHandler).
package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humafiber"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config is what New needs.
type Config struct {
	Pool *pgxpool.Pool // required; size it to the concurrency expected (Lambda: one request at a time)
	Auth AuthConfig
	// MaxBodyBytes limits a request body; 0 means 64 KiB.
	MaxBodyBytes int64
	// History serves the history endpoints and as_of from the warehouse; nil answers them 503.
	History History
	// AccountReadsPipeline, above 0, batches GET /accounts/{id}: the requests waiting are
	// answered by one query for all their ids, started after they arrived, sent through one
	// connection taken from the pool for good, in pipeline mode, with up to that many batches
	// sent and not yet answered (pipedReads). For a server with many requests at once (fin
	// api); 0 (Lambda's one request at a time, which would never batch) runs each read's own
	// query through the pool.
	AccountReadsPipeline int
	// Metrics receives one CloudWatch EMF line per request (requests, latency, 4xx and 5xx by
	// route; os.Stdout in Lambda); nil writes none.
	Metrics io.Writer

	humaGets bool // tests: every GET /accounts/{id} through Huma, without fastGetAccount
}

// The two kinds of token, as OpenAPI security schemes: bearerScheme is a service token (scope
// bank:service, every customer), customerScheme a token naming the one customer it acts for.
const (
	bearerScheme   = "bearer"
	customerScheme = "customer"
)

type server struct {
	pool     *pgxpool.Pool
	verifier *verifier
	app      *fiber.App
	humaGets bool
	accounts *accountReads
	history  History
	api      huma.API
	maxBody  int64
}

// New builds the API. ctx bounds background work (the JWKS refresh).
func New(ctx context.Context, cfg Config) (*fiber.App, error) {
	if cfg.Pool == nil {
		return nil, errors.New("api: Config.Pool is required")
	}
	v, err := newVerifier(ctx, cfg.Auth)
	if err != nil {
		return nil, err
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	app := fiber.New(fiber.Config{
		AppName:               "fin-orchestrator",
		DisableStartupMessage: true,
		// Fiber's own limit guards memory; the per-operation limit below answers with a problem.
		BodyLimit:    int(cfg.MaxBodyBytes) * 4,
		ReadTimeout:  30 * time.Second,
		WriteTimeout: 30 * time.Second,
		IdleTimeout:  120 * time.Second,
		ErrorHandler: fiberProblem,
		// QUERY (the IETF's safe method with a body) too, so it gets the 405 problem of any
		// method a route lacks; Fiber answers a method it does not know with a plain-text 400.
		RequestMethods: append(slices.Clip(fiber.DefaultMethods), "QUERY"),
	})
	// A panic in a handler becomes a 500 problem, not a dead process (or a dead Lambda container).
	app.Use(observe(cfg.Metrics), recover.New())

	hc := huma.DefaultConfig("fin-orchestrator banking API", "1.0.0")
	hc.Info.Description = "The system of record's API. Money is a decimal string with two places; " +
		"writes accept an Idempotency-Key; reads return an ETag that PUT accepts in If-Match. " +
		"Authorize with a bearer token: a service token (scope bank:service; locally `fin token`) reaches every " +
		"customer, a customer token (locally `fin token --customer ID`) only its own customer, accounts and " +
		"transactions: any other id answers 404, as an unknown one does."
	hc.CreateHooks = nil // no $schema links in bodies: the wire contract is the original API's
	// A copy: hc.Formats is Huma's package-level default map.
	formats := maps.Clone(hc.Formats)
	formats["application/json"], formats["json"] = jsonFormat, jsonFormat
	hc.Formats = formats
	hc.DocsPath = "" // served from the binary by docs.go, not from a CDN
	hc.SchemasPath = ""
	hc.RejectUnknownQueryParameters = true
	claim := cfg.Auth.customerClaim()
	hc.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		bearerScheme: {Type: "http", Scheme: "bearer", BearerFormat: "JWT",
			Description: "Service token: scope bank:service with bank:read (GET) or bank:write (POST, PUT, DELETE); " +
				"acts for every customer. A token with neither bank:service nor a " + claim + " claim is refused (403)."},
		customerScheme: {Type: "http", Scheme: "bearer", BearerFormat: "JWT",
			Description: "Customer token: its " + claim + " claim names the one customer it acts for (whatever its other " +
				"scopes); bank:read (GET) or bank:write (POST, PUT, DELETE)."},
	}
	s := &server{pool: cfg.Pool, verifier: v, humaGets: cfg.humaGets, history: cfg.History, maxBody: cfg.MaxBodyBytes,
		accounts: &accountReads{db: cfg.Pool}}
	if cfg.AccountReadsPipeline > 0 {
		s.accounts.piped = newPipedReads(ctx, cfg.Pool, cfg.AccountReadsPipeline, nil)
	}
	s.app = app
	s.api = humafiber.NewV2(app, hc)
	s.api.UseMiddleware(bufferedBody, requireScopes(s.api, v))
	s.api.UseMiddleware(refuseBadText(s.api))

	registerDocs(app)
	s.registerHealth()
	s.registerCustomers()
	s.registerAccounts()
	s.registerTransactions()
	s.registerHistory()
	s.documentGateway()
	s.documentLinks()
	s.documentChoices()
	return app, nil
}

// op declares an operation that needs scope: from a service token, and, when customer says what
// a customer token may do here, from a customer token too ("" refuses customer tokens).
func (s *server) op(method, path, id, summary, scope, customer string) huma.Operation {
	tag := "customers"
	switch {
	case len(path) >= 9 && path[:9] == "/accounts":
		tag = "accounts"
	case len(path) >= 13 && path[:13] == "/transactions":
		tag = "transactions"
	}
	return huma.Operation{
		OperationID:  id,
		Method:       method,
		Path:         path,
		Summary:      summary,
		Tags:         []string{tag},
		MaxBodyBytes: s.maxBody,
		Security:     security(scope, customer),
		Description:  accessNote(scope, customer),
	}
}

func security(scope, customer string) []map[string][]string {
	alternatives := []map[string][]string{{bearerScheme: {ScopeService, scope}}}
	if customer != "" {
		alternatives = append(alternatives, map[string][]string{customerScheme: {scope}})
	}
	return alternatives
}

// accessNote is the operation's description of who may call it.
func accessNote(scope, customer string) string {
	note := "**Access:** a service token with " + ScopeService + " and " + scope + ". "
	if customer == "" {
		return note + "A customer token is refused (403 service_only)."
	}
	return note + "A customer token with " + scope + ": " + customer
}

func (s *server) registerHealth() {
	type health struct {
		Status string `json:"status" example:"ok"`
	}
	huma.Register(s.api, huma.Operation{OperationID: "health", Method: http.MethodGet, Path: "/healthz",
		Summary: "Liveness and database reachability (no authentication)", Tags: []string{"operations"}},
		func(ctx context.Context, _ *struct{}) (*struct{ Body health }, error) {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if err := s.pool.Ping(ctx); err != nil {
				return nil, newProblem(http.StatusServiceUnavailable, "database_unreachable", "the database does not answer", "")
			}
			return &struct{ Body health }{health{Status: "ok"}}, nil
		})
}

// bufferedBody wraps the context so Huma's body read deadline is a no-op. Fiber hands handlers
// a body already read in full; behind the Lambda adapter the fasthttp connection is a fake one
// whose SetReadDeadline panics on any request with a body.
func bufferedBody(ctx huma.Context, next func(huma.Context)) {
	next(fiberContext{ctx, humafiber.UnwrapV2(ctx)})
}

// humaContext names huma.Context so that embedding it does not shadow its Context method.
type humaContext = huma.Context

type fiberContext struct {
	humaContext
	fc *fiber.Ctx
}

func (fiberContext) SetReadDeadline(time.Time) error { return nil }

// Unwrap lets humafiber.UnwrapV2 reach the Fiber context through this wrapper.
func (c fiberContext) Unwrap() huma.Context { return c.humaContext }

// URL skips the adapter's url.Parse of the whole request URI, and fasthttp's rebuilding of that
// URI (Request.RequestURI re-quotes the path on every call once the URI is parsed, which Fiber
// always does): Huma, refuseBadText and emptyParam ask for the URL on every request, only to
// read query parameters. The query is the raw one sent, as url.Parse would give it.
func (c fiberContext) URL() url.URL {
	req := c.fc.Request()
	u := url.URL{Path: string(req.URI().Path())}
	raw := req.Header.RequestURI()
	if i := bytes.IndexByte(raw, '?'); i >= 0 {
		q := raw[i+1:]
		if j := bytes.IndexByte(q, '#'); j >= 0 {
			q = q[:j]
		}
		u.RawQuery = string(q)
	}
	return u
}

// fiberProblem answers errors raised outside Huma (unknown routes, oversized bodies) with the
// same problem+json as everything else.
func fiberProblem(c *fiber.Ctx, err error) error {
	status := http.StatusInternalServerError
	var fe *fiber.Error
	if errors.As(err, &fe) {
		status = fe.Code
	}
	detail := http.StatusText(status)
	if status == http.StatusInternalServerError {
		slog.ErrorContext(c.UserContext(), "request failed", "request_id", requestID(c.UserContext()), "error", err)
		detail = "internal error; quote request id " + requestID(c.UserContext())
	} else if fe != nil {
		detail = fe.Message
	}
	p := newProblem(status, defaultCodes[status], detail, "")
	c.Set(fiber.HeaderContentType, "application/problem+json")
	return c.Status(status).JSON(p, "application/problem+json")
}

// Serve listens on addr and serves app until ctx ends, then shuts down gracefully: in-flight
// requests finish (up to 15 s), new connections are refused.
func Serve(ctx context.Context, app *fiber.App, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("api: listen on %s: %w", addr, err)
	}
	return ServeListener(ctx, app, ln)
}

// ServeListener is Serve on a listener the caller opened (tests use 127.0.0.1:0).
func ServeListener(ctx context.Context, app *fiber.App, ln net.Listener) error {
	slog.InfoContext(ctx, "api listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- app.Listener(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("api: serve: %w", err)
	case <-ctx.Done():
	}
	err := app.ShutdownWithTimeout(15 * time.Second)
	// A shutdown that comes before the server took the listener finds nothing to close: closing
	// it here ends the accept loop either way.
	ln.Close()
	<-errc
	if err != nil {
		return fmt.Errorf("api: shut down: %w", err)
	}
	slog.Info("api stopped", "addr", ln.Addr().String())
	return nil
}
