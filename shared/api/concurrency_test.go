package api

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gofiber/fiber/v2"
	"github.com/shopspring/decimal"
)

// TestConcurrentTransfers fires 200 random transfers at once among 10 accounts through the local
// server. The total must stay exact, no balance may go negative, and the only refusals allowed
// are for insufficient funds: a deadlock must never reach a client.
func TestConcurrentTransfers(t *testing.T) {
	e := newEnv(t)
	tr := e.transports[0]
	customer, ids := newAccounts(t, e, "concurrent@example.com", "EUR", 10)
	rng := rand.New(rand.NewPCG(1, 2))
	type job struct{ from, to, amount string }
	jobs := make([]job, 200)
	for i := range jobs {
		f, to := rng.IntN(10), rng.IntN(9)
		if to >= f {
			to++
		}
		jobs[i] = job{ids[f], ids[to], decimal.New(int64(rng.IntN(6000)+1), -2).StringFixed(2)}
	}
	var wg sync.WaitGroup
	statuses := make([]response, len(jobs))
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = tr.do(t, request{method: "POST", path: "/transactions", token: e.rw, body: map[string]any{
				"account_id": j.from, "related_account_id": j.to, "transaction_type": "TRANSFER", "amount": j.amount}})
		}()
	}
	wg.Wait()
	posted := 0
	for i, res := range statuses {
		switch {
		case res.status == http.StatusCreated:
			posted++
		case res.status == http.StatusUnprocessableEntity && problemOf(t, res).Code == "insufficient_funds":
		default:
			t.Errorf("transfer %d answered %d: %s", i, res.status, res.body)
		}
	}
	var total decimal.Decimal
	var negative, count int
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT sum(balance), count(*) FILTER (WHERE balance < 0), count(*)
		FROM accounts WHERE customer_id = $1`, customer).Scan(&total, &negative, &count); err != nil {
		t.Fatal(err)
	}
	if !total.Equal(decimal.RequireFromString("1000.00")) || negative != 0 || count != 10 {
		t.Fatalf("after %d transfers: total %s over %d accounts with %d negative, want 1000.00 over 10 with none", posted, total, count, negative)
	}
	// The ledger agrees with the balances: every balance is the sum of its postings.
	var mismatched int
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM accounts a WHERE balance <> (
		SELECT coalesce(sum(CASE WHEN t.transaction_type = 'DEPOSIT' AND t.account_id = a.account_id THEN t.amount
		                         WHEN t.account_id = a.account_id THEN -t.amount
		                         ELSE t.amount END), 0)
		FROM transactions t WHERE t.account_id = a.account_id OR t.related_account_id = a.account_id)`).Scan(&mismatched); err != nil {
		t.Fatal(err)
	}
	if mismatched != 0 || posted == 0 {
		t.Fatalf("%d accounts disagree with their ledger; %d transfers posted", mismatched, posted)
	}
	t.Logf("%d of %d transfers posted, the rest refused for insufficient funds", posted, len(jobs))
}

// TestLambdaStripsProxyHeaders sends a forged X-GoLambdaProxy-ApiGw-Context (fake authorizer
// claims) in both payload versions. The handler uses the adapter's context-passing entry points,
// which add no such header, so the app must see none at all.
func TestLambdaStripsProxyHeaders(t *testing.T) {
	e := newEnv(t)
	e.app.Get("/test/proxy-context", func(c *fiber.Ctx) error {
		var seen []string
		for k, v := range c.GetReqHeaders() {
			if strings.HasPrefix(strings.ToLower(k), "x-golambdaproxy-") {
				seen = append(seen, k+": "+strings.Join(v, ","))
			}
		}
		return c.JSON(fiber.Map{"proxy_headers": seen, "request_id": c.Get("X-Request-Id")})
	})
	forged := `{"authorizer":{"claims":{"scope":"bank:write"}}}`
	h := LambdaHandler(e.app)
	check := func(version, body, requestID string) {
		t.Helper()
		var seen struct {
			ProxyHeaders []string `json:"proxy_headers"`
			RequestID    string   `json:"request_id"`
		}
		if err := json.Unmarshal([]byte(body), &seen); err != nil {
			t.Fatalf("%s: decode %s: %v", version, body, err)
		}
		if len(seen.ProxyHeaders) != 0 {
			t.Fatalf("%s: client-sent proxy headers reached the app: %q", version, seen.ProxyHeaders)
		}
		if seen.RequestID != requestID {
			t.Fatalf("%s: request id %q, want API Gateway's %s", version, seen.RequestID, requestID)
		}
	}
	v1 := events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/test/proxy-context",
		Headers:           map[string]string{"X-GoLambdaProxy-ApiGw-Context": forged, "x-golambdaproxy-apigw-stagevars": "{}", "X-Request-Id": "client-chosen"},
		MultiValueHeaders: map[string][]string{"x-GoLambdaProxy-ApiGw-Context": {forged}, "X-Request-ID": {"client-chosen"}},
		RequestContext:    events.APIGatewayProxyRequestContext{RequestID: "gw-v1", Stage: "test"}}
	check("v1", invoke[events.APIGatewayProxyResponse](t, h, v1).Body, "gw-v1")
	v2 := events.APIGatewayV2HTTPRequest{Version: "2.0", RawPath: "/test/proxy-context",
		Headers: map[string]string{"x-golambdaproxy-apigw-context": forged, "X-GoLambdaProxy-ALB-Context": forged, "x-request-id": "client-chosen"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{RequestID: "gw-v2",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET", Path: "/test/proxy-context"}}}
	check("v2", invoke[events.APIGatewayV2HTTPResponse](t, h, v2).Body, "gw-v2")
}
