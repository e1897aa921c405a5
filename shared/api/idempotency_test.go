package api

import (
	"context"
	"net/http"
	"testing"
)

func TestIdempotency(t *testing.T) {
	e := newEnv(t)
	for _, tr := range e.transports {
		t.Run(tr.name, func(t *testing.T) {
			var c Customer
			call(t, tr, request{method: "POST", path: "/customers", token: e.rw, body: map[string]any{
				"first_name": "I", "last_name": "K", "email": tr.name + "@idem.example"}}, http.StatusCreated).json(t, &c)
			var a Account
			call(t, tr, request{method: "POST", path: "/accounts", token: e.rw, body: map[string]any{
				"customer_id": c.CustomerID, "account_type": "SAVINGS", "currency": "GBP", "opening_deposit": "50.00"}}, http.StatusCreated).json(t, &a)
			if a.Balance != "50.00" {
				t.Fatalf("opening deposit left balance %s, want 50.00", a.Balance)
			}

			key := map[string]string{"Idempotency-Key": "key-" + tr.name}
			dep := request{method: "POST", path: "/transactions", token: e.rw, header: key,
				body: map[string]any{"account_id": a.AccountID, "transaction_type": "DEPOSIT", "amount": "10.00"}}
			first := call(t, tr, dep, http.StatusCreated)
			// The same body with other spacing and key order is the same request.
			again := dep
			again.body = `{ "amount": "10.00", "transaction_type": "DEPOSIT", "account_id": "` + a.AccountID + `" }`
			second := call(t, tr, again, http.StatusCreated)
			if string(first.body) != string(second.body) || second.header.Get("Idempotent-Replayed") != "true" ||
				second.header.Get("Location") != first.header.Get("Location") {
				t.Fatalf("replay differs:\nfirst  %s %v\nsecond %s %v", first.body, first.header, second.body, second.header)
			}
			if first.header.Get("Idempotent-Replayed") != "" {
				t.Fatal("the first response claims to be a replay")
			}
			var got Account
			call(t, tr, request{method: "GET", path: "/accounts/" + a.AccountID, token: e.rw}, http.StatusOK).json(t, &got)
			if got.Balance != "60.00" {
				t.Fatalf("balance %s after a deposit and its replay, want 60.00 (posted once)", got.Balance)
			}

			other := dep
			other.body = map[string]any{"account_id": a.AccountID, "transaction_type": "DEPOSIT", "amount": "11.00"}
			if p := problemOf(t, call(t, tr, other, http.StatusUnprocessableEntity)); p.Code != "idempotency_key_reused" {
				t.Fatalf("key reused with another body gave code %q", p.Code)
			}
			// Keys are per subject: another client's same key is its own.
			mine := dep
			mine.token = e.token(t, "someone-else", ScopeRead, ScopeWrite)
			call(t, tr, mine, http.StatusCreated)

			// A failed request is not recorded: the same key may be retried once it can succeed.
			wkey := map[string]string{"Idempotency-Key": "withdraw-" + tr.name}
			wd := request{method: "POST", path: "/transactions", token: e.rw, header: wkey,
				body: map[string]any{"account_id": a.AccountID, "transaction_type": "WITHDRAWAL", "amount": "100.00"}}
			call(t, tr, wd, http.StatusUnprocessableEntity)
			call(t, tr, request{method: "POST", path: "/transactions", token: e.rw,
				body: map[string]any{"account_id": a.AccountID, "transaction_type": "DEPOSIT", "amount": "40.00"}}, http.StatusCreated)
			call(t, tr, wd, http.StatusCreated)

			// In flight: another request holds the key.
			inflight := dep
			inflight.header = map[string]string{"Idempotency-Key": "busy-" + tr.name}
			release := holdKey(t, e, "tester", "busy-"+tr.name)
			if p := problemOf(t, call(t, tr, inflight, http.StatusConflict)); p.Code != "idempotency_key_in_flight" {
				t.Fatalf("key in flight gave code %q", p.Code)
			}
			release()
			call(t, tr, inflight, http.StatusCreated)

			// DELETE (reversal) with a key replays the reversal instead of answering 409.
			var tx Transaction
			first.json(t, &tx)
			del := request{method: "DELETE", path: "/transactions/" + tx.TransactionID, token: e.rw,
				header: map[string]string{"Idempotency-Key": "rev-" + tr.name}}
			r1 := call(t, tr, del, http.StatusOK)
			r2 := call(t, tr, del, http.StatusOK)
			if string(r1.body) != string(r2.body) || r2.header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("reversal replay differs:\n%s\n%s", r1.body, r2.body)
			}
			del.header = nil
			call(t, tr, del, http.StatusConflict)
		})
	}
	var rows int
	if err := e.db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM idempotency_keys WHERE expires_at > now() + interval '23 hours'").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if want := 5 * len(e.transports); rows != want {
		t.Fatalf("%d idempotency keys recorded, want %d (kept 24 hours)", rows, want)
	}
}

// holdKey takes the advisory lock a request with key takes while it runs, as a concurrent
// request would; the returned function releases it.
func holdKey(t *testing.T, e *env, subject, key string) func() {
	t.Helper()
	ctx := context.Background()
	tx, err := e.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ok bool
	if err := tx.QueryRow(ctx, lockKeySQL, subject, key).Scan(&ok); err != nil || !ok {
		t.Fatalf("take the key's lock: %v %v", ok, err)
	}
	return func() { tx.Rollback(ctx) }
}
