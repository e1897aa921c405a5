package api

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestFastGetAccountSameAnswers sends the same requests to the API as served (fastGetAccount in
// front of Huma) and to one where Huma serves every GET /accounts/{id}, on the same database,
// through every transport: status, headers (but Date) and body must be identical, for the 200s
// the fast path writes itself and for every answer it leaves to Huma.
func TestFastGetAccountSameAnswers(t *testing.T) {
	// The fast path reads each account with its own query (Lambda), or through the pipelined
	// batches fin api uses; the answers must not tell them apart.
	for _, pipeline := range []int{0, 2} {
		t.Run(fmt.Sprintf("pipeline=%d", pipeline), func(t *testing.T) {
			fastGetSameAnswers(t, newEnv(t, func(c *Config) { c.AccountReadsPipeline = pipeline }))
		})
	}
}

func fastGetSameAnswers(t *testing.T, e *env) {
	huma := humaGetsAPI(t, e)

	var cust, other struct {
		ID string `json:"customer_id"`
	}
	mustDo(t, e, request{method: "POST", path: "/customers", token: e.rw,
		body: map[string]any{"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}}, 201).json(t, &cust)
	mustDo(t, e, request{method: "POST", path: "/customers", token: e.rw,
		body: map[string]any{"first_name": "Bob", "last_name": "Other", "email": "bob@example.com"}}, 201).json(t, &other)
	var acct, nick, theirs struct {
		ID string `json:"account_id"`
	}
	mustDo(t, e, request{method: "POST", path: "/accounts", token: e.rw, body: map[string]any{"customer_id": cust.ID,
		"account_type": "CHECKING", "currency": "USD", "opening_deposit": "12.30"}}, 201).json(t, &acct)
	// A nickname that needs escaping in JSON, with a version moved past 1.
	mustDo(t, e, request{method: "POST", path: "/accounts", token: e.rw, body: map[string]any{"customer_id": cust.ID,
		"account_type": "SAVINGS", "currency": "EUR", "nickname": "Ünïcode \"quoted\" \\ \u2028 <b>"}}, 201).json(t, &nick)
	mustDo(t, e, request{method: "PUT", path: "/accounts/" + nick.ID, token: e.rw,
		body: map[string]any{"account_type": "SAVINGS", "status": "INACTIVE"}}, 200)
	mustDo(t, e, request{method: "POST", path: "/accounts", token: e.rw, body: map[string]any{"customer_id": other.ID,
		"account_type": "CHECKING", "currency": "USD"}}, 201).json(t, &theirs)

	auth := AuthConfig{Secret: e.secret}
	mine := customerToken(t, auth, cust.ID, ScopeRead)
	mineNoRead := customerToken(t, auth, cust.ID, ScopeWrite)
	expired, err := IssueToken(e.secret, "tester", []string{ScopeRead, ScopeService}, -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	noService, err := IssueToken(e.secret, "tester", []string{ScopeRead}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path, token string
		want              int
	}{
		{"service token", "/accounts/" + acct.ID, e.ro, 200},
		{"read-write token", "/accounts/" + acct.ID, e.rw, 200},
		{"escaped nickname, version 2", "/accounts/" + nick.ID, e.ro, 200},
		{"customer token, own account", "/accounts/" + nick.ID, mine, 200},
		{"customer token, another's account", "/accounts/" + theirs.ID, mine, 404},
		{"customer token without bank:read", "/accounts/" + acct.ID, mineNoRead, 403},
		{"unknown id", "/accounts/" + uuid.NewString(), e.ro, 404},
		{"upper-case id", "/accounts/" + strings.ToUpper(acct.ID), e.ro, 200},
		{"not a uuid", "/accounts/not-a-uuid", e.ro, 422},
		{"braced uuid", "/accounts/{" + acct.ID + "}", e.ro, 422},
		{"unknown query parameter", "/accounts/" + acct.ID + "?x=1", e.ro, 422},
		{"empty as_of", "/accounts/" + acct.ID + "?as_of=", e.ro, 422},
		{"bare question mark", "/accounts/" + acct.ID + "?", e.ro, 200},
		{"as_of without a warehouse", "/accounts/" + acct.ID + "?as_of=2026-01-01T00:00:00Z", e.ro, 503},
		{"no token", "/accounts/" + acct.ID, "", 401},
		{"expired token", "/accounts/" + acct.ID, expired, 401},
		{"forged token", "/accounts/" + acct.ID, e.ro[:len(e.ro)-2] + "xx", 401},
		{"write scope only", "/accounts/" + acct.ID, e.wo, 403},
		{"neither service nor customer", "/accounts/" + acct.ID, noService, 403},
	}
	for i, tr := range e.transports {
		for _, c := range cases {
			r := request{method: "GET", path: c.path, token: c.token, header: map[string]string{"X-Request-Id": "same-id"}}
			got, want := tr.do(t, r), huma[i].do(t, r)
			if want.status != c.want {
				t.Errorf("%s %s: Huma answered %d %s, want %d", tr.name, c.name, want.status, want.body, c.want)
			}
			if got.status != want.status || string(got.body) != string(want.body) {
				t.Errorf("%s %s:\n fast %d %s\n huma %d %s", tr.name, c.name, got.status, got.body, want.status, want.body)
			}
			// In Lambda the request id is API Gateway's, a new one per event.
			for _, h := range []http.Header{got.header, want.header} {
				h.Del("Date")
				if tr.name != "http" && strings.HasPrefix(h.Get("X-Request-Id"), tr.name[len(tr.name)-2:]+"-") {
					h.Del("X-Request-Id")
				}
			}
			if g, w := headerText(got.header), headerText(want.header); g != w {
				t.Errorf("%s %s: headers differ:\n fast %s\n huma %s", tr.name, c.name, g, w)
			}
		}
	}
}

// humaGetsAPI serves e's database and secret from a second API whose every GET /accounts/{id} goes
// through Huma, reachable through the same transports as e's, in the same order.
func humaGetsAPI(t *testing.T, e *env) []transport {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	app, err := New(ctx, Config{Pool: e.db.Pool, Auth: AuthConfig{Secret: e.secret}, humaGets: true})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, app, ln) }()
	client := &http.Client{Timeout: time.Minute}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server did not shut down cleanly: %v", err)
		}
	})
	base := "http://" + ln.Addr().String()
	handler := LambdaHandler(app)
	return []transport{
		{"http", func(t testing.TB, r request) response { return doHTTP(t, client, base, r) }},
		{"lambda-v1", func(t testing.TB, r request) response { return doLambdaV1(t, handler, r) }},
		{"lambda-v2", func(t testing.TB, r request) response { return doLambdaV2(t, handler, r) }},
	}
}

func mustDo(t *testing.T, e *env, r request, want int) response {
	t.Helper()
	got := doHTTP(t, e.client, e.base, r)
	if got.status != want {
		t.Fatalf("%s %s: %d %s, want %d", r.method, r.path, got.status, got.body, want)
	}
	return got
}

func customerToken(t *testing.T, auth AuthConfig, customer string, scopes ...string) string {
	t.Helper()
	tok, err := auth.IssueCustomerToken("person", uuid.MustParse(customer), scopes, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// headerText is h's names and values, sorted, one per line.
func headerText(h http.Header) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(h)) {
		b.WriteString(k + ": " + strings.Join(h[k], ", ") + "\n")
	}
	return b.String()
}
