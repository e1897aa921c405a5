package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestFuzzFindings holds the answers a Schemathesis run found wrong: an empty parameter whose
// schema refuses "" is refused (not read as absent), and a method the API knows no route for is a
// 405 problem, not Fiber's plain-text 400.
func TestFuzzFindings(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name     string
		r        request
		want     int
		location string
	}{
		{"empty cursor", request{method: "GET", path: "/customers?starting_after="}, 422, "query.starting_after"},
		{"empty limit", request{method: "GET", path: "/accounts?limit="}, 422, "query.limit"},
		{"empty enum", request{method: "GET", path: "/accounts?status="}, 422, "query.status"},
		{"empty email", request{method: "GET", path: "/customers?email="}, 422, "query.email"},
		{"empty time", request{method: "GET", path: "/transactions?from="}, 422, "query.from"},
		{"empty Idempotency-Key", request{method: "POST", path: "/customers", header: map[string]string{"Idempotency-Key": ""},
			body: map[string]any{"first_name": "E", "last_name": "K", "email": "empty@key.example"}}, 422, "header.Idempotency-Key"},
		{"QUERY method", request{method: "QUERY", path: "/customers"}, 405, ""},
	}
	for _, tr := range e.transports {
		for _, tc := range cases {
			t.Run(tr.name+"/"+tc.name, func(t *testing.T) {
				tc.r.token = e.rw
				res := call(t, tr, tc.r, tc.want)
				p := problemOf(t, res)
				if tc.location == "" {
					return
				}
				if len(p.Errors) != 1 || p.Errors[0].Location != tc.location {
					t.Fatalf("problem does not name %s: %s", tc.location, res.body)
				}
			})
		}
	}
}

// TestOpenAPIDocumentsGateway: every operation that needs a token documents the 401 both ways,
// API Gateway's application/json {"message": ...} and the API's problem; create operations link
// to the operations on what they created.
func TestOpenAPIDocumentsGateway(t *testing.T) {
	e := newEnv(t)
	var doc struct {
		Info struct {
			Description string `json:"description"`
		} `json:"info"`
		Paths map[string]map[string]struct {
			OperationID string                `json:"operationId"`
			Description string                `json:"description"`
			Security    []map[string][]string `json:"security"`
			Responses   map[string]struct {
				Content map[string]struct {
					Schema struct {
						Ref string `json:"$ref"`
					} `json:"schema"`
				} `json:"content"`
				Links map[string]struct {
					OperationID string         `json:"operationId"`
					Parameters  map[string]any `json:"parameters"`
					RequestBody map[string]any `json:"requestBody"`
				} `json:"links"`
			} `json:"responses"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	doHTTP(t, e.client, e.base, request{method: "GET", path: "/openapi.json"}).json(t, &doc)
	if s := string(doc.Components.Schemas["GatewayError"]); !strings.Contains(s, `"message"`) {
		t.Fatalf("no GatewayError schema with a message: %s", s)
	}
	secured := 0
	for path, methods := range doc.Paths {
		for method, op := range methods {
			if len(op.Security) == 0 {
				continue
			}
			secured++
			r := op.Responses["401"].Content
			if r["application/json"].Schema.Ref != "#/components/schemas/GatewayError" ||
				r["application/problem+json"].Schema.Ref != "#/components/schemas/Problem" {
				t.Errorf("%s %s: 401 not documented both ways: %+v", method, path, r)
			}
		}
	}
	if secured < 15 {
		t.Fatalf("only %d operations need a token", secured)
	}
	links := doc.Paths["/accounts"]["post"].Responses["201"].Links
	for _, id := range []string{"replace-account", "close-account", "account-history"} {
		if l, ok := links[id]; !ok || l.Parameters["account_id"] != "$response.body#/account_id" {
			t.Errorf("POST /accounts does not link to %s: %+v", id, links)
		}
	}
	if l := links["post-transaction"]; l.RequestBody["account_id"] != "$response.body#/account_id" {
		t.Errorf("POST /accounts does not link to post-transaction with its id in the body: %+v", l)
	}
	if !strings.Contains(doc.Info.Description, "412 when If-Match names another version") {
		t.Errorf("the description does not say what a schema-valid request can meet: %q", doc.Info.Description)
	}
	if d := doc.Paths["/transactions/{transaction_id}"]["delete"].Description; !strings.Contains(d, "stays readable after DELETE") {
		t.Errorf("DELETE /transactions/{id} does not say the transaction stays readable: %q", d)
	}
	// The gateway's real 401 is what the description says: checked against fin up by
	// scripts/test.d/42-schemathesis.sh; here, the API's own.
	res := call(t, e.transports[0], request{method: "GET", path: "/customers"}, http.StatusUnauthorized)
	if p := problemOf(t, res); p.Code != "unauthorized" {
		t.Fatalf("401 without the code: %s", res.body)
	}
}
