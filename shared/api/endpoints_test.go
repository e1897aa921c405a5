package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestEndpoints walks every endpoint through the local server and both Lambda payload versions,
// with bodies on every POST and PUT.
func TestEndpoints(t *testing.T) {
	e := newEnv(t)
	for _, tr := range e.transports {
		t.Run(tr.name, func(t *testing.T) {
			tok := e.rw
			email := tr.name + "@example.com"

			// Customers.
			r := request{method: "POST", path: "/customers", token: tok, body: map[string]any{
				"first_name": "Zoë", "last_name": "O'Brien", "email": email, "country": "IE"}}
			res := call(t, tr, r, http.StatusCreated)
			var c Customer
			res.json(t, &c)
			if loc := res.header.Get("Location"); loc != "/customers/"+c.CustomerID {
				t.Fatalf("Location %q, want /customers/%s", loc, c.CustomerID)
			}
			if c.FirstName != "Zoë" || c.Email != email || c.CreatedAt.Location().String() != "UTC" {
				t.Fatalf("created customer %+v does not echo what was sent in UTC", c)
			}
			res = call(t, tr, request{method: "GET", path: "/customers/" + c.CustomerID, token: tok}, http.StatusOK)
			tag := res.header.Get("ETag")
			if tag != `"v1"` {
				t.Fatalf("ETag of a new customer is %q, want \"v1\"", tag)
			}
			var list List[Customer]
			call(t, tr, request{method: "GET", path: "/customers?email=" + strings.ToUpper(email), token: tok}, http.StatusOK).json(t, &list)
			if len(list.Data) != 1 || list.Data[0].CustomerID != c.CustomerID || list.HasMore {
				t.Fatalf("email filter returned %+v, want only %s", list, c.CustomerID)
			}
			put := request{method: "PUT", path: "/customers/" + c.CustomerID, token: tok, header: map[string]string{"If-Match": tag},
				body: map[string]any{"first_name": "Zoe", "last_name": "O'Brien", "email": email, "city": "Dublin"}}
			res = call(t, tr, put, http.StatusOK)
			res.json(t, &c)
			if c.FirstName != "Zoe" || c.City == nil || *c.City != "Dublin" || c.Country != nil || res.header.Get("ETag") != `"v2"` {
				t.Fatalf("PUT did not replace the fields: %+v, ETag %s", c, res.header.Get("ETag"))
			}
			if p := problemOf(t, call(t, tr, put, http.StatusPreconditionFailed)); p.Code != "precondition_failed" {
				t.Fatalf("stale If-Match gave code %q", p.Code)
			}

			// Accounts.
			open := func(currency string) Account {
				t.Helper()
				var a Account
				res := call(t, tr, request{method: "POST", path: "/accounts", token: tok, body: map[string]any{
					"customer_id": c.CustomerID, "account_type": "CHECKING", "currency": currency}}, http.StatusCreated)
				res.json(t, &a)
				if a.Balance != "0.00" || a.Status != "ACTIVE" || res.header.Get("Location") != "/accounts/"+a.AccountID {
					t.Fatalf("opened account %+v (Location %s), want balance 0.00, ACTIVE", a, res.header.Get("Location"))
				}
				return a
			}
			a1, a2, eur := open("USD"), open("USD"), open("EUR")
			var alist List[Account]
			call(t, tr, request{method: "GET", path: "/accounts?customer_id=" + c.CustomerID + "&status=ACTIVE", token: tok}, http.StatusOK).json(t, &alist)
			if len(alist.Data) != 3 {
				t.Fatalf("customer's active accounts: %d, want 3", len(alist.Data))
			}

			// Transactions.
			post := func(body map[string]any, want int) (Transaction, Problem) {
				t.Helper()
				res := call(t, tr, request{method: "POST", path: "/transactions", token: tok, body: body}, want)
				var tx Transaction
				var p Problem
				if want == http.StatusCreated {
					res.json(t, &tx)
				} else {
					p = problemOf(t, res)
				}
				return tx, p
			}
			dep, _ := post(map[string]any{"account_id": a1.AccountID, "transaction_type": "DEPOSIT", "amount": "100.5", "description": "salary"}, http.StatusCreated)
			if dep.Amount != "100.50" || dep.Status != "COMPLETED" || dep.Currency != "USD" {
				t.Fatalf("deposit %+v, want amount 100.50 COMPLETED USD", dep)
			}
			post(map[string]any{"account_id": a1.AccountID, "transaction_type": "WITHDRAWAL", "amount": "0.50"}, http.StatusCreated)
			tr1, _ := post(map[string]any{"account_id": a1.AccountID, "transaction_type": "TRANSFER", "amount": "30.00", "related_account_id": a2.AccountID}, http.StatusCreated)
			if tr1.RelatedAccountID == nil || *tr1.RelatedAccountID != a2.AccountID {
				t.Fatalf("transfer %+v does not name its destination", tr1)
			}
			if _, p := post(map[string]any{"account_id": a2.AccountID, "transaction_type": "WITHDRAWAL", "amount": "30.01"}, http.StatusUnprocessableEntity); p.Code != "insufficient_funds" {
				t.Fatalf("overdraft gave code %q, want insufficient_funds", p.Code)
			}
			if _, p := post(map[string]any{"account_id": a1.AccountID, "transaction_type": "TRANSFER", "amount": "1.00", "related_account_id": eur.AccountID}, http.StatusUnprocessableEntity); p.Code != "currency_mismatch" {
				t.Fatalf("USD->EUR transfer gave code %q, want currency_mismatch", p.Code)
			}
			if _, p := post(map[string]any{"account_id": a1.AccountID, "transaction_type": "DEPOSIT", "amount": "1.00", "currency": "EUR"}, http.StatusUnprocessableEntity); p.Code != "currency_mismatch" {
				t.Fatalf("EUR deposit into USD account gave code %q, want currency_mismatch", p.Code)
			}
			balance := func(a Account, want string) {
				t.Helper()
				var got Account
				call(t, tr, request{method: "GET", path: "/accounts/" + a.AccountID, token: tok}, http.StatusOK).json(t, &got)
				if got.Balance != want {
					t.Fatalf("account %s balance %s, want %s", a.AccountID, got.Balance, want)
				}
			}
			balance(a1, "70.00")
			balance(a2, "30.00")

			var tlist List[Transaction]
			call(t, tr, request{method: "GET", path: "/transactions?account_id=" + a2.AccountID, token: tok}, http.StatusOK).json(t, &tlist)
			if len(tlist.Data) != 1 || tlist.Data[0].TransactionID != tr1.TransactionID {
				t.Fatalf("a2's transactions %+v, want only the incoming transfer", tlist.Data)
			}
			call(t, tr, request{method: "GET", path: "/transactions?account_id=" + a1.AccountID + "&transaction_type=DEPOSIT&from=2000-01-01T00:00:00Z", token: tok}, http.StatusOK).json(t, &tlist)
			if len(tlist.Data) != 1 || tlist.Data[0].TransactionID != dep.TransactionID {
				t.Fatalf("a1's deposits %+v, want only %s", tlist.Data, dep.TransactionID)
			}
			call(t, tr, request{method: "GET", path: "/transactions?account_id=" + a1.AccountID + "&to=2000-01-01T00:00:00Z", token: tok}, http.StatusOK).json(t, &tlist)
			if len(tlist.Data) != 0 {
				t.Fatalf("transactions before 2000: %+v, want none", tlist.Data)
			}

			// Descriptive updates only; money fields refused.
			res = call(t, tr, request{method: "GET", path: "/transactions/" + tr1.TransactionID, token: tok}, http.StatusOK)
			var got Transaction
			res.json(t, &got)
			res = call(t, tr, request{method: "PUT", path: "/transactions/" + tr1.TransactionID, token: tok,
				header: map[string]string{"If-Match": res.header.Get("ETag")},
				body:   map[string]any{"description": "rent", "category": "housing", "amount": "30.00", "account_id": a1.AccountID}}, http.StatusOK)
			res.json(t, &got)
			if got.Description == nil || *got.Description != "rent" || got.Amount != "30.00" {
				t.Fatalf("described transaction %+v", got)
			}
			res = call(t, tr, request{method: "PUT", path: "/transactions/" + tr1.TransactionID, token: tok,
				body: map[string]any{"description": "rent", "amount": "31.00"}}, http.StatusUnprocessableEntity)
			if p := problemOf(t, res); p.Code != "immutable_field" || !strings.Contains(p.Detail, "reverse") || p.Errors[0].Location != "body.amount" {
				t.Fatalf("amount change gave %+v, want immutable_field at body.amount saying to reverse", p)
			}

			// Reversal.
			var rev Reversal
			call(t, tr, request{method: "DELETE", path: "/transactions/" + tr1.TransactionID, token: tok}, http.StatusOK).json(t, &rev)
			if rev.Reversed.Status != "REVERSED" || rev.Reversal.ReversesTransactionID == nil || *rev.Reversal.ReversesTransactionID != tr1.TransactionID ||
				rev.Reversal.AccountID != a2.AccountID || rev.Reversal.Amount != "30.00" {
				t.Fatalf("reversal %+v", rev)
			}
			balance(a1, "100.00")
			balance(a2, "0.00")
			if p := problemOf(t, call(t, tr, request{method: "DELETE", path: "/transactions/" + tr1.TransactionID, token: tok}, http.StatusConflict)); p.Code != "already_reversed" {
				t.Fatalf("second DELETE gave code %q, want already_reversed", p.Code)
			}

			// Account lifecycle.
			res = call(t, tr, request{method: "PUT", path: "/accounts/" + a1.AccountID, token: tok,
				body: map[string]any{"account_type": "CHECKING", "status": "ACTIVE", "balance": "1000000.00"}}, http.StatusUnprocessableEntity)
			if p := problemOf(t, res); p.Code != "immutable_field" || p.Errors[0].Location != "body.balance" {
				t.Fatalf("balance change gave %+v", p)
			}
			var acc Account
			call(t, tr, request{method: "PUT", path: "/accounts/" + a1.AccountID, token: tok,
				body: map[string]any{"account_type": "SAVINGS", "status": "ACTIVE", "nickname": "rainy day", "balance": "100.00"}}, http.StatusOK).json(t, &acc)
			if acc.AccountType != "SAVINGS" || acc.Nickname == nil || *acc.Nickname != "rainy day" {
				t.Fatalf("replaced account %+v", acc)
			}
			if p := problemOf(t, call(t, tr, request{method: "DELETE", path: "/accounts/" + a1.AccountID, token: tok}, http.StatusConflict)); p.Code != "balance_not_zero" {
				t.Fatalf("closing a funded account gave code %q", p.Code)
			}
			if p := problemOf(t, call(t, tr, request{method: "DELETE", path: "/customers/" + c.CustomerID, token: tok}, http.StatusConflict)); p.Code != "has_active_accounts" {
				t.Fatalf("removing a customer with active accounts gave code %q", p.Code)
			}
			for _, a := range []Account{a2, eur} {
				call(t, tr, request{method: "DELETE", path: "/accounts/" + a.AccountID, token: tok}, http.StatusOK).json(t, &acc)
				if acc.Status != "INACTIVE" {
					t.Fatalf("closed account %+v is not INACTIVE", acc)
				}
			}
			if _, p := post(map[string]any{"account_id": a2.AccountID, "transaction_type": "DEPOSIT", "amount": "1.00"}, http.StatusConflict); p.Code != "account_inactive" {
				t.Fatalf("deposit into a closed account gave code %q", p.Code)
			}
			post(map[string]any{"account_id": a1.AccountID, "transaction_type": "WITHDRAWAL", "amount": "100.00"}, http.StatusCreated)
			call(t, tr, request{method: "DELETE", path: "/accounts/" + a1.AccountID, token: tok}, http.StatusOK)
			call(t, tr, request{method: "DELETE", path: "/customers/" + c.CustomerID, token: tok}, http.StatusNoContent)
			call(t, tr, request{method: "GET", path: "/customers/" + c.CustomerID, token: tok}, http.StatusNotFound)
			call(t, tr, request{method: "GET", path: "/accounts/" + a1.AccountID, token: tok}, http.StatusOK) // history stays

			// Operations and docs.
			call(t, tr, request{method: "GET", path: "/healthz"}, http.StatusOK)
			res = call(t, tr, request{method: "GET", path: "/openapi.json"}, http.StatusOK)
			var spec struct {
				OpenAPI string         `json:"openapi"`
				Paths   map[string]any `json:"paths"`
			}
			res.json(t, &spec)
			if spec.OpenAPI != "3.1.0" || len(spec.Paths) != 9 {
				t.Fatalf("openapi.json: version %s with %d paths, want 3.1.0 with 9", spec.OpenAPI, len(spec.Paths))
			}
			res = call(t, tr, request{method: "GET", path: "/docs"}, http.StatusOK)
			if !strings.Contains(string(res.body), "swagger-ui-bundle.js") {
				t.Fatalf("/docs page does not load its bundle: %s", res.body)
			}
			res = call(t, tr, request{method: "GET", path: "/docs/swagger-ui-bundle.js"}, http.StatusOK)
			if !strings.Contains(string(res.body), "SwaggerUIBundle") {
				t.Fatalf("/docs/swagger-ui-bundle.js (%d bytes) is not the Swagger UI bundle", len(res.body))
			}
		})
	}
}

// TestPagination pages through more customers than one page holds.
func TestPagination(t *testing.T) {
	e := newEnv(t)
	tr := e.transports[0]
	want := map[string]bool{}
	for i := range 25 {
		var c Customer
		call(t, tr, request{method: "POST", path: "/customers", token: e.rw, body: map[string]any{
			"first_name": "P", "last_name": fmt.Sprint(i), "email": fmt.Sprintf("p%d@example.com", i)}}, http.StatusCreated).json(t, &c)
		want[c.CustomerID] = true
	}
	seen := map[string]bool{}
	path, pages := "/customers?limit=10", []int{}
	for {
		var l List[Customer]
		call(t, tr, request{method: "GET", path: path, token: e.ro}, http.StatusOK).json(t, &l)
		pages = append(pages, len(l.Data))
		for _, c := range l.Data {
			if seen[c.CustomerID] {
				t.Fatalf("customer %s appears on two pages", c.CustomerID)
			}
			seen[c.CustomerID] = true
		}
		if !l.HasMore {
			break
		}
		path = "/customers?limit=10&starting_after=" + l.Data[len(l.Data)-1].CustomerID
	}
	if fmt.Sprint(pages) != "[10 10 5]" || len(seen) != len(want) {
		t.Fatalf("pages of %v holding %d customers, want [10 10 5] holding %d", pages, len(seen), len(want))
	}
	for id := range want {
		if !seen[id] {
			t.Fatalf("customer %s never listed", id)
		}
	}
}
