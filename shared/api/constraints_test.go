package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
)

// TestConstraintProblems provokes, through the API, violations that only the database catches
// (the request passes the OpenAPI schema): each answer is the constraint's meaning from
// bank.Constraints with its status and location, never Postgres' text.
func TestConstraintProblems(t *testing.T) {
	e := newEnv(t)
	setup := e.transports[0]
	var c Customer
	call(t, setup, request{method: "POST", path: "/customers", token: e.rw, body: map[string]any{
		"first_name": "Con", "last_name": "Straint", "email": "taken@constraint.example"}}, http.StatusCreated).json(t, &c)
	cust := func(k, v string) map[string]any {
		m := map[string]any{"first_name": "A", "last_name": "B", "email": "fresh@constraint.example"}
		m[k] = v
		return m
	}
	meanings := bank.Constraints()
	cases := []struct {
		constraint   string
		method, path string
		body         any
		status       int
		code         string
		location     string
	}{
		{"customers_first_name_check", "POST", "/customers", cust("first_name", "   "), 422, "invalid_field", "body.first_name"},
		{"customers_last_name_check", "PUT", "/customers/" + c.CustomerID, cust("last_name", " \u00a0 "), 422, "invalid_field", "body.last_name"},
		{"customers_email_check", "POST", "/customers", cust("email", "ada@localhost"), 422, "invalid_field", "body.email"},
		{"customers_email_key", "POST", "/customers", cust("email", "TAKEN@constraint.example"), 409, "email_taken", "body.email"},
	}
	for _, tr := range e.transports {
		for _, tc := range cases {
			t.Run(tr.name+"/"+tc.constraint, func(t *testing.T) {
				m, ok := meanings[tc.constraint]
				if !ok {
					t.Fatalf("no meaning for %s", tc.constraint)
				}
				r := request{method: tc.method, path: tc.path, body: tc.body, token: e.rw}
				res := call(t, tr, r, tc.status)
				p := problemOf(t, res)
				want := m.Field + " " + m.Reason
				if m.Err != nil {
					want = m.Err.Error()
				}
				if p.Code != tc.code || !strings.Contains(p.Detail, want) {
					t.Fatalf("answer %s, want code %s and detail %q", res.body, tc.code, want)
				}
				if len(p.Errors) != 1 || p.Errors[0].Location != tc.location {
					t.Fatalf("answer %s does not point at %s", res.body, tc.location)
				}
				for _, leak := range []string{"violates", "constraint", "relation", "SQLSTATE", "duplicate key", "customers_"} {
					if strings.Contains(string(res.body), leak) {
						t.Fatalf("the database's text (%q) reaches the client: %s", leak, res.body)
					}
				}
			})
		}
	}
}
