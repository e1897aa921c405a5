package api

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
	"github.com/fin-orchestrator/fin-orchestrator/shared/history"
)

// pgHistory is a warehouse that has seen exactly the system of record's current rows, one
// version each: it answers the history endpoints as the warehouse does (history.NeverSeen,
// history.NotAt) so that their ownership checks can be told apart from the warehouse's own
// answers. History itself is tested against a built warehouse in history_test.go.
type pgHistory struct{ db bank.Querier }

func (h pgHistory) customer(ctx context.Context, id uuid.UUID) (*history.Customer, error) {
	c, err := bank.GetCustomer(ctx, h.db, id)
	if errors.Is(err, bank.ErrNotFound) {
		return nil, nil
	}
	return &history.Customer{Customer: c, Validity: history.Validity{VersionID: id.String() + "@1", ValidFrom: c.CreatedAt, IsCurrent: true}}, err
}

func (h pgHistory) account(ctx context.Context, id uuid.UUID) (*history.Account, error) {
	a, err := bank.GetAccount(ctx, h.db, id)
	if errors.Is(err, bank.ErrNotFound) {
		return nil, nil
	}
	return &history.Account{Account: a, Validity: history.Validity{VersionID: id.String() + "@1", ValidFrom: a.CreatedAt, IsCurrent: true}}, err
}

func (h pgHistory) CustomerVersions(ctx context.Context, id uuid.UUID, _ history.Page) ([]history.Customer, bool, error) {
	c, err := h.customer(ctx, id)
	if err == nil && c == nil {
		err = history.NeverSeen("customer", id)
	}
	if err != nil {
		return nil, false, err
	}
	return []history.Customer{*c}, false, nil
}

func (h pgHistory) AccountVersions(ctx context.Context, id uuid.UUID, _ history.Page) ([]history.Account, bool, error) {
	a, err := h.account(ctx, id)
	if err == nil && a == nil {
		err = history.NeverSeen("account", id)
	}
	if err != nil {
		return nil, false, err
	}
	return []history.Account{*a}, false, nil
}

// pgCut is the cut this warehouse answers from: it holds every row, so any time is in it.
func pgCut(t time.Time) history.Cut { return history.Cut{LSN: 1, CommitTS: t.UTC()} }

func (h pgHistory) CustomerAsOf(ctx context.Context, id uuid.UUID, t time.Time) (history.Customer, history.Cut, error) {
	c, err := h.customer(ctx, id)
	if err == nil && c == nil {
		err = history.NotAt("customer", id, t)
	}
	if err != nil {
		return history.Customer{}, history.Cut{}, err
	}
	return *c, pgCut(t), nil
}

func (h pgHistory) AccountAsOf(ctx context.Context, id uuid.UUID, t time.Time) (history.Account, history.Cut, error) {
	a, err := h.account(ctx, id)
	if err == nil && a == nil {
		err = history.NotAt("account", id, t)
	}
	if err != nil {
		return history.Account{}, history.Cut{}, err
	}
	return *a, pgCut(t), nil
}

// bank is the fixture: customer A (the customer token's) with accounts a1 and a2, customer B
// with b1, every account funded, and transactions of every relation to A: on its account (tA),
// between its accounts (tAA), sent to B (tAB), received from B (tBA), and B's alone (tB).
type ownershipFixture struct {
	e                        *env
	tr                       transport
	a, b, a1, a2, b1         string
	emailA, emailB           string
	tA, tAA, tAB, tBA, tB    string
	service, customer, user  string // tokens; user has read and write but neither service nor customer
	customerAndService       string // a customer token that also carries bank:service: still the customer's
	customerRead, serviceOne string // read-only customer token; a service token without write
}

func newOwnershipFixture(t *testing.T) *ownershipFixture {
	t.Helper()
	e := newEnv(t, func(c *Config) { c.History = pgHistory{db: c.Pool} })
	f := &ownershipFixture{e: e, tr: e.transports[0], service: e.rw, serviceOne: e.ro,
		emailA: "alice@example.com", emailB: "bob@example.com"}
	f.a = f.create(t, "/customers", map[string]any{"first_name": "Alice", "last_name": "A", "email": f.emailA}, "customer_id")
	f.b = f.create(t, "/customers", map[string]any{"first_name": "Bob", "last_name": "B", "email": f.emailB}, "customer_id")
	f.a1, f.a2, f.b1 = f.account(t, f.a), f.account(t, f.a), f.account(t, f.b)
	f.tA = f.deposit(t, f.a1)
	f.tB = f.deposit(t, f.b1)
	f.tAA = f.transfer(t, f.a1, f.a2)
	f.tAB = f.transfer(t, f.a1, f.b1)
	f.tBA = f.transfer(t, f.b1, f.a1)
	auth := AuthConfig{Secret: e.secret}
	sign := func(customer string, scopes ...string) string {
		var tok string
		var err error
		if customer == "" {
			tok, err = auth.IssueToken("someone", scopes, time.Hour)
		} else {
			tok, err = auth.IssueCustomerToken("alice", uuid.MustParse(customer), scopes, time.Hour)
		}
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	f.customer = sign(f.a, ScopeRead, ScopeWrite)
	f.customerRead = sign(f.a, ScopeRead)
	f.customerAndService = sign(f.a, ScopeRead, ScopeWrite, ScopeService)
	f.user = sign("", ScopeRead, ScopeWrite)
	return f
}

// create POSTs body with the service token and returns the field idField of the answer.
func (f *ownershipFixture) create(t *testing.T, path string, body map[string]any, idField string) string {
	t.Helper()
	var out map[string]any
	call(t, f.tr, request{method: "POST", path: path, token: f.service, body: body}, http.StatusCreated).json(t, &out)
	return out[idField].(string)
}

func (f *ownershipFixture) account(t *testing.T, customer string) string {
	return f.create(t, "/accounts", map[string]any{"customer_id": customer, "account_type": "CHECKING",
		"currency": "USD", "opening_deposit": "1000.00"}, "account_id")
}

func (f *ownershipFixture) deposit(t *testing.T, account string) string {
	return f.create(t, "/transactions", map[string]any{"account_id": account, "transaction_type": "DEPOSIT", "amount": "5.00"}, "transaction_id")
}

func (f *ownershipFixture) transfer(t *testing.T, from, to string) string {
	return f.create(t, "/transactions", map[string]any{"account_id": from, "transaction_type": "TRANSFER",
		"amount": "2.50", "related_account_id": to}, "transaction_id")
}

// The kinds of id each endpoint is called with.
const (
	own = iota
	other
	unknownID
)

var idKinds = [3]string{"own", "other", "unknown"}

// TestCustomerTokens calls every endpoint that takes an id with the customer token's own ids,
// another customer's, and unknown ones, with a service token and with customer tokens, through
// the real app on Postgres. A customer's answer for another customer's id must be the answer for
// an unknown id, byte for byte once the ids are set aside; a token with neither bank:service nor
// a customer is refused everywhere.
func TestCustomerTokens(t *testing.T) {
	f := newOwnershipFixture(t)
	fixed := func(own, other string) func(t *testing.T, k int) string {
		return func(t *testing.T, k int) string { return [3]string{own, other, uuid.NewString()}[k] }
	}
	const asOf = "?as_of=2026-11-25T16:00:00Z"
	cases := []struct {
		name              string
		id                func(t *testing.T, k int) string // the id of kind k; may create it
		req               func(id string) request
		service, customer [3]int // statuses for own, other, unknown
		customerCode      string // the problem code a customer gets for its own id, when refused
	}{
		{name: "get customer", id: fixed(f.a, f.b),
			req:     func(id string) request { return request{method: "GET", path: "/customers/" + id} },
			service: [3]int{200, 200, 404}, customer: [3]int{200, 404, 404}},
		{name: "get customer as_of", id: fixed(f.a, f.b),
			req:     func(id string) request { return request{method: "GET", path: "/customers/" + id + asOf} },
			service: [3]int{200, 200, 404}, customer: [3]int{200, 404, 404}},
		{name: "customer history", id: fixed(f.a, f.b),
			req:     func(id string) request { return request{method: "GET", path: "/customers/" + id + "/history"} },
			service: [3]int{200, 200, 404}, customer: [3]int{200, 404, 404}},
		{name: "replace customer", id: fixed(f.a, f.b),
			req: func(id string) request {
				email := map[string]string{f.a: f.emailA, f.b: f.emailB}[id]
				if email == "" {
					email = "nobody@example.com"
				}
				return request{method: "PUT", path: "/customers/" + id, body: map[string]any{"first_name": "Renamed", "last_name": "X", "email": email}}
			},
			service: [3]int{200, 200, 404}, customer: [3]int{200, 404, 404}},
		{name: "delete customer", id: fixed(f.a, f.b),
			req:     func(id string) request { return request{method: "DELETE", path: "/customers/" + id} },
			service: [3]int{409, 409, 404}, customer: [3]int{403, 403, 403}, customerCode: "service_only"},
		{name: "create customer", id: fixed("", ""),
			req: func(string) request {
				return request{method: "POST", path: "/customers", body: map[string]any{"first_name": "New", "last_name": "N", "email": uuid.NewString() + "@example.com"}}
			},
			service: [3]int{201, 201, 201}, customer: [3]int{403, 403, 403}, customerCode: "service_only"},
		{name: "get account", id: fixed(f.a1, f.b1),
			req:     func(id string) request { return request{method: "GET", path: "/accounts/" + id} },
			service: [3]int{200, 200, 404}, customer: [3]int{200, 404, 404}},
		{name: "get account as_of", id: fixed(f.a1, f.b1),
			req:     func(id string) request { return request{method: "GET", path: "/accounts/" + id + asOf} },
			service: [3]int{200, 200, 404}, customer: [3]int{200, 404, 404}},
		{name: "account history", id: fixed(f.a1, f.b1),
			req:     func(id string) request { return request{method: "GET", path: "/accounts/" + id + "/history"} },
			service: [3]int{200, 200, 404}, customer: [3]int{200, 404, 404}},
		{name: "open account for a customer", id: fixed(f.a, f.b),
			req: func(id string) request {
				return request{method: "POST", path: "/accounts", body: map[string]any{"customer_id": id, "account_type": "SAVINGS", "currency": "USD"}}
			},
			service: [3]int{201, 201, 404}, customer: [3]int{201, 404, 404}},
		{name: "replace account", id: fixed(f.a1, f.b1),
			req: func(id string) request {
				return request{method: "PUT", path: "/accounts/" + id, body: map[string]any{"account_type": "CHECKING", "status": "ACTIVE"}}
			},
			service: [3]int{200, 200, 404}, customer: [3]int{200, 404, 404}},
		{name: "close account", id: fixed(f.a1, f.b1), // funded: refused, and nothing changes
			req:     func(id string) request { return request{method: "DELETE", path: "/accounts/" + id} },
			service: [3]int{409, 409, 404}, customer: [3]int{409, 404, 404}},
		{name: "get transaction on its account", id: fixed(f.tA, f.tB),
			req:     func(id string) request { return request{method: "GET", path: "/transactions/" + id} },
			service: [3]int{200, 200, 404}, customer: [3]int{200, 404, 404}},
		{name: "get transfer it received", id: fixed(f.tBA, f.tB),
			req:     func(id string) request { return request{method: "GET", path: "/transactions/" + id} },
			service: [3]int{200, 200, 404}, customer: [3]int{200, 404, 404}},
		{name: "withdraw from an account", id: fixed(f.a1, f.b1),
			req: func(id string) request {
				return request{method: "POST", path: "/transactions", body: map[string]any{"account_id": id, "transaction_type": "WITHDRAWAL", "amount": "1.00"}}
			},
			service: [3]int{201, 201, 404}, customer: [3]int{201, 404, 404}},
		{name: "transfer from an account to another customer's", id: fixed(f.a1, f.b1),
			req: func(id string) request {
				to := f.b1
				if id == f.b1 {
					to = f.a1
				}
				return request{method: "POST", path: "/transactions", body: map[string]any{"account_id": id,
					"transaction_type": "TRANSFER", "amount": "1.00", "related_account_id": to}}
			},
			service: [3]int{201, 201, 404}, customer: [3]int{201, 404, 404}},
		{name: "describe transaction", id: fixed(f.tA, f.tB),
			req: func(id string) request {
				return request{method: "PUT", path: "/transactions/" + id, body: map[string]any{"description": "mine"}}
			},
			service: [3]int{200, 200, 404}, customer: [3]int{200, 404, 404}},
		{name: "describe a transfer it received", id: fixed(f.tBA, f.tB),
			req: func(id string) request {
				return request{method: "PUT", path: "/transactions/" + id, body: map[string]any{"description": "mine"}}
			},
			service: [3]int{200, 200, 404}, customer: [3]int{403, 404, 404}, customerCode: "not_own_account"},
		{name: "reverse a deposit",
			id: func(t *testing.T, k int) string {
				return [3]func() string{func() string { return f.deposit(t, f.a1) }, func() string { return f.deposit(t, f.b1) }, uuid.NewString}[k]()
			},
			req:     func(id string) request { return request{method: "DELETE", path: "/transactions/" + id} },
			service: [3]int{200, 200, 404}, customer: [3]int{200, 404, 404}},
		{name: "reverse a transfer between its own accounts",
			id: func(t *testing.T, k int) string {
				return [3]func() string{func() string { return f.transfer(t, f.a1, f.a2) }, func() string { return f.deposit(t, f.b1) }, uuid.NewString}[k]()
			},
			req:     func(id string) request { return request{method: "DELETE", path: "/transactions/" + id} },
			service: [3]int{200, 200, 404}, customer: [3]int{200, 404, 404}},
		{name: "reverse a transfer to another customer",
			id: func(t *testing.T, k int) string {
				return [3]func() string{func() string { return f.transfer(t, f.a1, f.b1) }, func() string { return f.deposit(t, f.b1) }, uuid.NewString}[k]()
			},
			req:     func(id string) request { return request{method: "DELETE", path: "/transactions/" + id} },
			service: [3]int{200, 200, 404}, customer: [3]int{403, 404, 404}, customerCode: "not_own_account"},
	}
	tokens := []struct {
		name     string
		token    func() string
		customer bool
	}{
		{"service", func() string { return f.service }, false},
		{"customer", func() string { return f.customer }, true},
		{"customer with bank:service", func() string { return f.customerAndService }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, tr := range f.e.transports {
				for _, tok := range tokens {
					want := c.service
					if tok.customer {
						want = c.customer
					}
					checkOwnership(t, tr, tok.name+" token over "+tr.name, tok.token(), tok.customer, c.id, c.req, want, c.customerCode)
				}
			}
			// A token with neither bank:service nor a customer is refused whatever the id.
			for k := range 3 {
				r := c.req(c.id(t, k))
				r.token = f.user
				if p := problemOf(t, call(t, f.tr, r, http.StatusForbidden)); p.Code != "insufficient_scope" || !strings.Contains(p.Detail, ScopeService) {
					t.Errorf("user token, %s id: %+v, want insufficient_scope naming %s", idKinds[k], p, ScopeService)
				}
			}
		})
	}
}

// checkOwnership sends req with an own, another customer's and an unknown id, and checks the
// statuses; for a customer token, the other id's answer must be the unknown id's, byte for byte
// once the ids are set aside, and a refusal of its own id must carry code.
func checkOwnership(t *testing.T, tr transport, who, token string, customer bool, idOf func(*testing.T, int) string,
	req func(string) request, want [3]int, code string) {
	t.Helper()
	var bodies [3]string
	for k := range 3 {
		id := idOf(t, k)
		r := req(id)
		r.token = token
		res := tr.do(t, r)
		if res.status != want[k] {
			t.Fatalf("%s, %s id: %s %s answered %d, want %d: %s", who, idKinds[k], r.method, r.path, res.status, want[k], res.body)
		}
		if k == own && customer && code != "" {
			if p := problemOf(t, res); p.Code != code {
				t.Errorf("%s, own id: code %q, want %q", who, p.Code, code)
			}
		}
		bodies[k] = string(res.body)
		if id != "" {
			bodies[k] = strings.ReplaceAll(bodies[k], id, "{id}")
		}
	}
	if customer && bodies[other] != bodies[unknownID] {
		t.Errorf("%s: another customer's id is told from an unknown one:\n other:   %s\n unknown: %s", who, bodies[other], bodies[unknownID])
	}
}

// TestCustomerTokenLists: a customer token's lists hold its own rows alone, whatever the filters;
// a cursor naming another customer's row is refused as an unknown one is, so a list never tells
// that an id exists.
func TestCustomerTokenLists(t *testing.T) {
	f := newOwnershipFixture(t)
	ids := func(t *testing.T, token, path, field string) []string {
		t.Helper()
		var l struct {
			Data []map[string]any `json:"data"`
		}
		call(t, f.tr, request{method: "GET", path: path, token: token}, http.StatusOK).json(t, &l)
		var out []string
		for _, row := range l.Data {
			out = append(out, row[field].(string))
		}
		slices.Sort(out)
		return out
	}
	sorted := func(s ...string) []string { slices.Sort(s); return s }
	cases := []struct {
		path, field       string
		customer, service []string // nil service: not checked (other tests' rows do not exist here, so it is every row)
	}{
		{"/customers?limit=100", "customer_id", sorted(f.a), sorted(f.a, f.b)},
		{"/customers?email=" + f.emailB, "customer_id", nil, sorted(f.b)},
		{"/accounts?limit=100", "account_id", sorted(f.a1, f.a2), sorted(f.a1, f.a2, f.b1)},
		{"/accounts?customer_id=" + f.b, "account_id", nil, sorted(f.b1)},
		{"/accounts?customer_id=" + f.a, "account_id", sorted(f.a1, f.a2), sorted(f.a1, f.a2)},
		{"/transactions?transaction_type=TRANSFER", "transaction_id", sorted(f.tAA, f.tAB, f.tBA), sorted(f.tAA, f.tAB, f.tBA)},
		{"/transactions?account_id=" + f.b1 + "&transaction_type=TRANSFER", "transaction_id", sorted(f.tAB, f.tBA), sorted(f.tAB, f.tBA)},
		{"/transactions?transaction_type=DEPOSIT&account_id=" + f.b1, "transaction_id", nil, nil},
	}
	for _, c := range cases {
		if got := ids(t, f.customer, c.path, c.field); !slices.Equal(got, c.customer) {
			t.Errorf("customer token: GET %s listed %v, want %v", c.path, got, c.customer)
		}
		if got := ids(t, f.service, c.path, c.field); c.service != nil && !slices.Equal(got, c.service) {
			t.Errorf("service token: GET %s listed %v, want %v", c.path, got, c.service)
		}
	}
	if got := ids(t, f.customer, "/transactions?limit=100", "transaction_id"); slices.Contains(got, f.tB) || !slices.Contains(got, f.tA) || !slices.Contains(got, f.tBA) {
		t.Errorf("customer token listed transactions %v: want %s and %s, never B's own %s", got, f.tA, f.tBA, f.tB)
	}
	for _, c := range []struct{ path, other string }{
		{"/customers?starting_after=", f.b}, {"/accounts?starting_after=", f.b1}, {"/transactions?starting_after=", f.tB},
	} {
		unknown := uuid.NewString()
		otherRes := call(t, f.tr, request{method: "GET", path: c.path + c.other, token: f.customer}, http.StatusUnprocessableEntity)
		unknownRes := call(t, f.tr, request{method: "GET", path: c.path + unknown, token: f.customer}, http.StatusUnprocessableEntity)
		if a, b := strings.ReplaceAll(string(otherRes.body), c.other, "{id}"), strings.ReplaceAll(string(unknownRes.body), unknown, "{id}"); a != b {
			t.Errorf("GET %s<another customer's id> is told from an unknown id:\n %s\n %s", c.path, a, b)
		}
		call(t, f.tr, request{method: "GET", path: c.path + c.other, token: f.service}, http.StatusOK)
	}
}

// TestCustomerTokenScopes: a customer token still needs the operation's scope, and a customer
// claim that is not a customer id makes the token invalid rather than a token for no customer.
func TestCustomerTokenScopes(t *testing.T) {
	f := newOwnershipFixture(t)
	r := request{method: "POST", path: "/transactions", token: f.customerRead,
		body: map[string]any{"account_id": f.a1, "transaction_type": "WITHDRAWAL", "amount": "1.00"}}
	if p := problemOf(t, call(t, f.tr, r, http.StatusForbidden)); p.Code != "insufficient_scope" || !strings.Contains(p.Detail, ScopeWrite) {
		t.Errorf("read-only customer token posting: %+v, want insufficient_scope naming %s", p, ScopeWrite)
	}
	call(t, f.tr, request{method: "GET", path: "/accounts/" + f.a1, token: f.customerRead}, http.StatusOK)
	call(t, f.tr, request{method: "GET", path: "/accounts/" + f.a1, token: f.serviceOne}, http.StatusOK)
	for name, value := range map[string]any{"not a uuid": "alice", "nil uuid": uuid.Nil.String(), "a number": 42, "empty": ""} {
		now := time.Now()
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "scope": ScopeRead,
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), DefaultCustomerClaim: value}).SignedString(f.e.secret)
		if err != nil {
			t.Fatal(err)
		}
		if p := problemOf(t, call(t, f.tr, request{method: "GET", path: "/customers", token: tok}, http.StatusUnauthorized)); !strings.Contains(p.Detail, DefaultCustomerClaim) {
			t.Errorf("customer claim %s: %q does not name the claim", name, p.Detail)
		}
	}
}

// TestVerifiedTokenCacheKeepsItsKey: a token remembered as verified is remembered by a copy of
// its text. The server's request buffer is reused, so a key that aliased it would turn into the
// next request's token: a forgery of the same length would then pass unverified, as the
// remembered customer.
func TestVerifiedTokenCacheKeepsItsKey(t *testing.T) {
	f := newOwnershipFixture(t)
	call(t, f.tr, request{method: "GET", path: "/customers/" + f.a, token: f.customer}, http.StatusOK)
	forged := []byte(f.customer)
	forged[len(forged)-2] ^= 1 // the signature's last bytes: same length, wrong signature
	for range 3 {
		call(t, f.tr, request{method: "GET", path: "/customers/" + f.a, token: string(forged)}, http.StatusUnauthorized)
	}
}

// TestOpenAPISaysWhoMayCall: every operation but health and the docs declares its security as
// alternatives, a service token (bank:service and the operation's scope) or a customer token
// (the scope), and its description says what a customer token may do there; creating and
// removing customers takes a service token alone.
func TestOpenAPISaysWhoMayCall(t *testing.T) {
	e := newEnv(t)
	var spec struct {
		Paths map[string]map[string]struct {
			OperationID string                `json:"operationId"`
			Description string                `json:"description"`
			Security    []map[string][]string `json:"security"`
		} `json:"paths"`
		Components struct {
			SecuritySchemes map[string]struct {
				Type, Scheme, Description string
			} `json:"securitySchemes"`
		} `json:"components"`
	}
	call(t, e.transports[0], request{method: "GET", path: "/openapi.json"}, http.StatusOK).json(t, &spec)
	for _, name := range []string{bearerScheme, customerScheme} {
		if s := spec.Components.SecuritySchemes[name]; s.Type != "http" || s.Scheme != "bearer" || s.Description == "" {
			t.Errorf("security scheme %s: %+v, want a described http bearer scheme", name, s)
		}
	}
	serviceOnly := []string{"create-customer", "delete-customer"}
	n := 0
	for path, ops := range spec.Paths {
		for method, op := range ops {
			if path == "/healthz" {
				if len(op.Security) != 0 {
					t.Errorf("GET /healthz declares security %v", op.Security)
				}
				continue
			}
			n++
			scope := ScopeWrite
			if method == "get" {
				scope = ScopeRead
			}
			want := []map[string][]string{{bearerScheme: {ScopeService, scope}}, {customerScheme: {scope}}}
			customerNote := "A customer token with " + scope + ": "
			if slices.Contains(serviceOnly, op.OperationID) {
				want, customerNote = want[:1], "A customer token is refused"
			}
			if !reflect.DeepEqual(op.Security, want) {
				t.Errorf("%s %s (%s): security %v, want %v", method, path, op.OperationID, op.Security, want)
			}
			if !strings.Contains(op.Description, "**Access:** a service token with "+ScopeService+" and "+scope) || !strings.Contains(op.Description, customerNote) {
				t.Errorf("%s %s (%s): description %q does not say who may call it", method, path, op.OperationID, op.Description)
			}
		}
	}
	if n != 17 {
		t.Errorf("checked %d operations, want the API's 17: a new one needs its access decided here", n)
	}
}
