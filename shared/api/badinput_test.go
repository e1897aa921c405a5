package api

import (
	"errors"
	"net/http"
	"strings"
	"syscall"
	"testing"
)

// TestBadInputs sends inputs a client may get wrong or an attacker may try; each must be a 4xx
// problem+json that names what is wrong, never a 5xx.
func TestBadInputs(t *testing.T) {
	e := newEnv(t)
	setup := e.transports[0]
	var c Customer
	call(t, setup, request{method: "POST", path: "/customers", token: e.rw, body: map[string]any{
		"first_name": "B", "last_name": "I", "email": "bad@input.example"}}, http.StatusCreated).json(t, &c)
	var a Account
	call(t, setup, request{method: "POST", path: "/accounts", token: e.rw, body: map[string]any{
		"customer_id": c.CustomerID, "account_type": "CHECKING", "currency": "USD"}}, http.StatusCreated).json(t, &a)

	dep := func(amount any) map[string]any {
		return map[string]any{"account_id": a.AccountID, "transaction_type": "DEPOSIT", "amount": amount}
	}
	cust := func(k string, v any) map[string]any {
		m := map[string]any{"first_name": "A", "last_name": "B", "email": "x@example.com"}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name     string
		method   string
		path     string
		body     any
		want     int
		location string // where the problem points, when it names one
	}{
		{"amount as number", "POST", "/transactions", dep(12.3), 422, "body.amount"},
		{"amount with 3 decimals", "POST", "/transactions", dep("1.005"), 422, "body.amount"},
		{"zero amount", "POST", "/transactions", dep("0.00"), 422, "body.amount"},
		{"negative amount", "POST", "/transactions", dep("-5.00"), 422, "body.amount"},
		{"huge amount", "POST", "/transactions", dep("99999999999999999999.00"), 422, "body.amount"},
		{"amount overflowing the ledger", "POST", "/transactions", dep("10000000000000000.00"), 422, "body.amount"},
		{"exponent amount", "POST", "/transactions", dep("1e3"), 422, "body.amount"},
		{"NaN amount", "POST", "/transactions", dep("NaN"), 422, "body.amount"},
		{"empty amount", "POST", "/transactions", dep(""), 422, "body.amount"},
		{"unknown transaction type", "POST", "/transactions", map[string]any{"account_id": a.AccountID, "transaction_type": "GIFT", "amount": "1.00"}, 422, "body.transaction_type"},
		{"transfer without destination", "POST", "/transactions", map[string]any{"account_id": a.AccountID, "transaction_type": "TRANSFER", "amount": "1.00"}, 422, "body.related_account_id"},
		{"transfer to itself", "POST", "/transactions", map[string]any{"account_id": a.AccountID, "transaction_type": "TRANSFER", "amount": "1.00", "related_account_id": a.AccountID}, 422, "body.related_account_id"},
		{"deposit with destination", "POST", "/transactions", map[string]any{"account_id": a.AccountID, "transaction_type": "DEPOSIT", "amount": "1.00", "related_account_id": a.AccountID}, 422, "body.related_account_id"},
		{"unknown account", "POST", "/transactions", map[string]any{"account_id": "00000000-0000-4000-8000-000000000000", "transaction_type": "DEPOSIT", "amount": "1.00"}, 404, ""},
		{"account id not a uuid", "POST", "/transactions", map[string]any{"account_id": "1; DROP TABLE accounts", "transaction_type": "DEPOSIT", "amount": "1.00"}, 422, "body.account_id"},
		{"missing amount", "POST", "/transactions", map[string]any{"account_id": a.AccountID, "transaction_type": "DEPOSIT"}, 422, "body.amount"},
		{"unknown field", "POST", "/transactions", map[string]any{"account_id": a.AccountID, "transaction_type": "DEPOSIT", "amount": "1.00", "created_at": "2020-01-01T00:00:00Z"}, 422, "body.created_at"},
		{"client-set balance on open", "POST", "/accounts", map[string]any{"customer_id": c.CustomerID, "account_type": "CHECKING", "currency": "USD", "balance": "100.00"}, 422, "body.balance"},
		{"unknown currency", "POST", "/accounts", map[string]any{"customer_id": c.CustomerID, "account_type": "CHECKING", "currency": "XXX"}, 422, "body.currency"},
		{"3-decimal currency", "POST", "/accounts", map[string]any{"customer_id": c.CustomerID, "account_type": "CHECKING", "currency": "KWD"}, 422, "body.currency"},
		{"lower-case currency", "POST", "/accounts", map[string]any{"customer_id": c.CustomerID, "account_type": "CHECKING", "currency": "usd"}, 422, "body.currency"},
		{"unknown customer", "POST", "/accounts", map[string]any{"customer_id": "00000000-0000-4000-8000-000000000000", "account_type": "CHECKING", "currency": "USD"}, 404, ""},
		{"account type wrong case", "POST", "/accounts", map[string]any{"customer_id": c.CustomerID, "account_type": "checking", "currency": "USD"}, 422, "body.account_type"},
		{"name as number", "POST", "/customers", cust("first_name", 42), 422, "body.first_name"},
		{"name missing", "POST", "/customers", cust("first_name", nil), 422, "body.first_name"},
		{"name empty", "POST", "/customers", cust("first_name", ""), 422, "body.first_name"},
		{"name only spaces", "POST", "/customers", cust("first_name", "   "), 422, "body.first_name"},
		{"name too long", "POST", "/customers", cust("first_name", strings.Repeat("é", 101)), 422, "body.first_name"},
		{"name with NUL", "POST", "/customers", cust("first_name", "A\x00B"), 422, "body.first_name"},
		{"name with newline", "POST", "/customers", cust("last_name", "A\nB"), 422, "body.last_name"},
		{"email invalid", "POST", "/customers", cust("email", "not-an-email"), 422, "body.email"},
		{"email SQL-like", "POST", "/customers", cust("email", "x'; DROP TABLE customers;--@example.com"), 422, "body.email"},
		{"email with display name", "POST", "/customers", cust("email", "Bob <bob@example.com>"), 422, "body.email"},
		{"email taken", "POST", "/customers", cust("email", "BAD@input.example"), 409, "body.email"},
		{"country lower case", "POST", "/customers", cust("country", "ie"), 422, "body.country"},
		{"country as array", "POST", "/customers", cust("country", []string{"IE"}), 422, "body.country"},
		{"invalid JSON", "POST", "/customers", `{"first_name": "A",`, 400, ""},
		{"JSON array body", "POST", "/customers", `[1,2,3]`, 422, ""},
		{"empty body", "POST", "/customers", ``, 400, ""},
		{"oversized body", "POST", "/customers", `{"first_name": "` + strings.Repeat("A", 300<<10) + `"}`, 413, ""},
		{"body over Fiber's limit", "POST", "/customers", `{"first_name": "` + strings.Repeat("A", 2<<20) + `"}`, 413, ""},
		{"path id not a uuid", "GET", "/customers/1%20OR%201=1", nil, 422, "path.customer_id"},
		{"unknown customer", "GET", "/customers/00000000-0000-4000-8000-000000000000", nil, 404, ""},
		{"limit too large", "GET", "/customers?limit=1000", nil, 422, "query.limit"},
		{"limit not a number", "GET", "/customers?limit=ten", nil, 422, "query.limit"},
		{"unknown query parameter", "GET", "/customers?sort=name", nil, 422, "query.sort"},
		{"cursor unknown", "GET", "/customers?starting_after=00000000-0000-4000-8000-000000000000", nil, 422, "query.starting_after"},
		{"bad time range", "GET", "/transactions?from=yesterday", nil, 422, "query.from"},
		{"bad status filter", "GET", "/accounts?status=OPEN", nil, 422, "query.status"},
		{"malformed If-Match", "PUT", "/customers/" + c.CustomerID, cust("email", "bad@input.example"), 412, "header.If-Match"},
		{"status change on transaction", "PUT", "/transactions/00000000-0000-4000-8000-000000000000", map[string]any{"status": "REVERSED"}, 404, ""},
		{"unknown route", "GET", "/nowhere", nil, 404, ""},
		{"wrong method", "PATCH", "/customers", `{}`, 405, ""},
	}
	for _, tr := range e.transports {
		for _, tc := range cases {
			t.Run(tr.name+"/"+tc.name, func(t *testing.T) {
				r := request{method: tc.method, path: tc.path, body: tc.body, token: e.rw}
				if tc.name == "malformed If-Match" {
					r.header = map[string]string{"If-Match": "12"}
				}
				var res response
				if tr.name == "http" && tc.want == http.StatusRequestEntityTooLarge {
					// The server answers 413 before an oversized upload ends and closes the
					// connection; TCP may then reset it, and a reset can discard the answer on
					// the client's side. A reset is the server refusing the body too.
					var err error
					if res, err = tryHTTP(t, e.client, e.base, r); err != nil {
						if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
							t.Fatalf("%s %s: %v", r.method, r.path, err)
						}
						return
					}
					expect(t, r, res, tc.want)
				} else {
					res = call(t, tr, r, tc.want)
				}
				p := problemOf(t, res)
				if p.Status != tc.want || p.Title == "" || p.Code == "" {
					t.Fatalf("problem %+v lacks status %d, a title or a code", p, tc.want)
				}
				if tc.location == "" {
					return
				}
				field := tc.location[strings.LastIndex(tc.location, ".")+1:]
				for _, d := range p.Errors {
					// A missing property is reported on its parent, naming the property.
					if d.Location == tc.location || d.Location == "body" && strings.Contains(d.Message, "property "+field+" ") {
						return
					}
				}
				t.Fatalf("problem does not name %s: %s", tc.location, res.body)
			})
		}
	}
}
