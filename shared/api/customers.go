package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
)

// customerFields are what a client sets on a customer; PUT replaces all of them.
type customerFields struct {
	FirstName   string  `json:"first_name" minLength:"1" maxLength:"100" pattern:"^[^\\x00-\\x1F\\x7F]*$" patternDescription:"text without control characters"`
	LastName    string  `json:"last_name" minLength:"1" maxLength:"100" pattern:"^[^\\x00-\\x1F\\x7F]*$" patternDescription:"text without control characters"`
	Email       string  `json:"email" format:"email" maxLength:"254"`
	AddressLine *string `json:"address_line,omitempty" nullable:"true" maxLength:"200" pattern:"^[^\\x00-\\x1F\\x7F]*$" patternDescription:"text without control characters"`
	City        *string `json:"city,omitempty" nullable:"true" maxLength:"100" pattern:"^[^\\x00-\\x1F\\x7F]*$" patternDescription:"text without control characters"`
	PostalCode  *string `json:"postal_code,omitempty" nullable:"true" maxLength:"20" pattern:"^[A-Za-z0-9 -]*$" patternDescription:"letters, digits, spaces and dashes"`
	Country     *string `json:"country,omitempty" nullable:"true" pattern:"^[A-Z]{2}$" patternDescription:"ISO 3166-1 alpha-2 code, such as GB"`
}

func (f customerFields) domain() bank.CustomerFields {
	return bank.CustomerFields{FirstName: f.FirstName, LastName: f.LastName, Email: f.Email,
		AddressLine: f.AddressLine, City: f.City, PostalCode: f.PostalCode, Country: f.Country}
}

// CustomerPath names a customer in the path.
type CustomerPath struct {
	CustomerID string `path:"customer_id" format:"uuid"`
}

type customerOne struct {
	ETag string `header:"ETag"`
	CutHeaders
	Body Customer
}

type customerCreated struct {
	Location string `header:"Location"`
	ETag     string `header:"ETag"`
	Replayed string `header:"Idempotent-Replayed"`
	Body     Customer
}

func (o *customerCreated) markReplayed() { o.Replayed = "true" }

func oneCustomer(c bank.Customer) *customerOne {
	return &customerOne{ETag: etag(c.Version), Body: customerOut(c)}
}

func (s *server) registerCustomers() {
	s.registerListCustomers()
	s.registerGetCustomer()
	s.registerCreateCustomer()
	s.registerReplaceCustomer()
	s.registerDeleteCustomer()
}

// registerListCustomers registers GET /customers.
func (s *server) registerListCustomers() {
	huma.Register(s.api, s.op(http.MethodGet, "/customers", "list-customers", "List customers", ScopeRead,
		"the list holds its own customer alone."),
		func(ctx context.Context, in *struct {
			PageParams
			Email string `query:"email" minLength:"1" maxLength:"254" doc:"Only the customer with this email (any case)"`
		}) (*struct{ Body List[Customer] }, error) {
			page, err := in.page()
			if err != nil {
				return nil, err
			}
			rows, more, err := bank.ListCustomers(ctx, s.pool, bank.CustomerFilter{Email: in.Email, Owner: owner(ctx), Page: page})
			if err != nil {
				return nil, problemFor(ctx, err)
			}
			return &struct{ Body List[Customer] }{listOut(rows, more, customerOut)}, nil
		})
}

// registerGetCustomer registers GET /customers/{customer_id}, now or as_of.
func (s *server) registerGetCustomer() {
	huma.Register(s.api, s.historyOp("/customers/{customer_id}", "get-customer", "Get a customer (now, or as_of a past time)", ownCustomerOnly),
		func(ctx context.Context, in *struct {
			CustomerPath
			AsOfParam
		}) (*customerOne, error) {
			id, err := parseID(in.CustomerID, "path.customer_id")
			if err != nil {
				return nil, err
			}
			if t, ok, err := in.at(); err != nil || ok {
				if err != nil {
					return nil, err
				}
				return s.customerAsOf(ctx, id, t)
			}
			if err := seeCustomer(ctx, id); err != nil {
				return nil, problemFor(ctx, err)
			}
			c, err := bank.GetCustomer(ctx, s.pool, id)
			if err != nil {
				return nil, problemFor(ctx, err)
			}
			return oneCustomer(c), nil
		})
}

// registerCreateCustomer registers POST /customers.
func (s *server) registerCreateCustomer() {
	create := s.op(http.MethodPost, "/customers", "create-customer", "Create a customer", ScopeWrite, "")
	create.DefaultStatus = http.StatusCreated
	huma.Register(s.api, create, func(ctx context.Context, in *struct {
		IdempotencyHeader
		Body customerFields
	}) (*customerCreated, error) {
		out, err := runWrite(ctx, s.pool, in.write(http.MethodPost, "/customers", in.Body, http.StatusCreated),
			valued(func(tx *pipedTx) (*customerCreated, error) {
				c, err := bank.CreateCustomer(ctx, tx, [16]byte{}, in.Body.domain())
				if err != nil {
					return nil, err
				}
				return &customerCreated{Location: "/customers/" + c.ID.String(), ETag: etag(c.Version), Body: customerOut(c)}, nil
			}))
		if err != nil {
			return nil, problemFor(ctx, err)
		}
		return out, nil
	})
}

// registerReplaceCustomer registers PUT /customers/{customer_id}.
func (s *server) registerReplaceCustomer() {
	huma.Register(s.api, s.op(http.MethodPut, "/customers/{customer_id}", "replace-customer",
		"Replace a customer's fields (If-Match: its ETag, to refuse stale writes)", ScopeWrite,
		ownCustomerOnly),
		func(ctx context.Context, in *struct {
			CustomerPath
			IfMatchHeader
			Body customerFields
		}) (*customerOne, error) {
			id, version, err := versioned(in.CustomerID, "path.customer_id", in.IfMatchHeader)
			if err != nil {
				return nil, err
			}
			if err := seeCustomer(ctx, id); err != nil {
				return nil, problemFor(ctx, err)
			}
			c, err := bank.UpdateCustomer(ctx, s.pool, id, in.Body.domain(), version)
			if err != nil {
				return nil, problemFor(ctx, err)
			}
			return oneCustomer(c), nil
		})
}

// registerDeleteCustomer registers DELETE /customers/{customer_id}.
func (s *server) registerDeleteCustomer() {
	remove := s.op(http.MethodDelete, "/customers/{customer_id}", "delete-customer",
		"Remove a customer from the current set (refused while it holds an active account; its history stays)", ScopeWrite, "")
	remove.DefaultStatus = http.StatusNoContent
	huma.Register(s.api, remove, func(ctx context.Context, in *CustomerPath) (*struct{}, error) {
		id, err := parseID(in.CustomerID, "path.customer_id")
		if err != nil {
			return nil, err
		}
		_, err = inTx(ctx, s.pool, func(tx *pipedTx) (*struct{}, error) {
			_, err := bank.RemoveCustomer(ctx, tx, id)
			return nil, err
		})
		if err != nil {
			return nil, problemFor(ctx, err)
		}
		return nil, nil
	})
}
