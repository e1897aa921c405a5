package api

import (
	"reflect"
	"strings"

	"github.com/danielgtaylor/huma/v2"
)

// GatewayError is the body API Gateway answers with itself, before the function runs: its JWT
// authorizer refuses a request without a valid token with 401 and this body as application/json
// (`{"message":"Unauthorized"}`). `fin up`'s gateway sends the same, as AWS does.
type GatewayError struct {
	Message string `json:"message" example:"Unauthorized" doc:"API Gateway's own message"`
}

// documentGateway adds the gateway's 401 to every operation that needs a token, beside the API's
// own problem: a client behind API Gateway meets the first, one calling the function directly
// (or with a token the gateway accepted and the API does not, such as a Cognito ID token) the
// second.
func (s *server) documentGateway() {
	oapi := s.api.OpenAPI()
	gateway := oapi.Components.Schemas.Schema(reflect.TypeFor[GatewayError](), true, "GatewayError")
	problem := oapi.Components.Schemas.Schema(reflect.TypeFor[Problem](), true, "Problem")
	for _, item := range oapi.Paths {
		for _, op := range []*huma.Operation{item.Get, item.Put, item.Post, item.Delete, item.Patch} {
			if op == nil || len(op.Security) == 0 {
				continue
			}
			op.Responses["401"] = &huma.Response{
				Description: "No valid bearer token. API Gateway's JWT authorizer answers application/json " +
					"`{\"message\":\"Unauthorized\"}` before the API runs; the API itself answers " +
					"application/problem+json with the code `unauthorized` and `WWW-Authenticate: Bearer`.",
				Content: map[string]*huma.MediaType{
					"application/problem+json": {Schema: problem},
					"application/json":         {Schema: gateway},
				},
			}
		}
	}
}

// documentLinks adds OpenAPI links from each create operation's 201 to the operations on the
// resource it created (POST /customers -> GET, PUT, DELETE /customers/{customer_id} and its
// history) and to the creation of its children (POST /accounts for the customer), so a client
// generator, or a stateful fuzzer, can follow them.
func (s *server) documentLinks() {
	oapi := s.api.OpenAPI()
	for _, coll := range []struct{ path, id string }{
		{"/customers", "customer_id"}, {"/accounts", "account_id"}, {"/transactions", "transaction_id"},
	} {
		create := oapi.Paths[coll.path].Post
		if create == nil || create.Responses["201"] == nil {
			continue
		}
		links := map[string]*huma.Link{}
		for _, sub := range []string{"", "/history"} {
			item := oapi.Paths[coll.path+"/{"+coll.id+"}"+sub]
			if item == nil {
				continue
			}
			for _, op := range []*huma.Operation{item.Get, item.Put, item.Delete} {
				if op != nil {
					links[op.OperationID] = &huma.Link{OperationID: op.OperationID,
						Parameters: map[string]any{coll.id: "$response.body#/" + coll.id}}
				}
			}
		}
		create.Responses["201"].Links = links
	}
	// What a created resource is the parent of: its id goes into the child's create body.
	for _, child := range []struct{ parent, id, op string }{
		{"/customers", "customer_id", "open-account"}, {"/accounts", "account_id", "post-transaction"},
	} {
		if r := oapi.Paths[child.parent].Post.Responses["201"]; r != nil && r.Links != nil {
			r.Links[child.op] = &huma.Link{OperationID: child.op,
				RequestBody: map[string]any{child.id: "$response.body#/" + child.id}}
		}
	}
}

// keptAfterDelete says, in the description, what DELETE keeps: contract testers (and clients)
// must not take a 200 on GET after it for a use after free.
var keptAfterDelete = map[string]string{
	"reverse-transaction": "The transaction stays readable after DELETE, with status REVERSED (the ledger never loses a row); " +
		"the compensating entry is a transaction of its own, pointing at it through reverses_transaction_id.",
	"close-account": "The account stays readable after DELETE, with status INACTIVE, and keeps its history.",
}

// domainRules is said once for every operation: what a request that fits the schema can still
// be refused with, so a client (or a contract tester) knows these answers are the contract.
const domainRules = " A request the schema accepts can still break a rule of the bank, which the schema cannot " +
	"state: 422 with a code saying which (insufficient_funds, currency_mismatch, a starting_after cursor or a " +
	"currency the ledger does not hold, ...), 409 when the row's state refuses it (account_inactive, " +
	"already_reversed, ...), 412 when If-Match names another version of the row (a malformed ETag never matches)."

// documentChoices says, as deliberate choices, what a request the schema accepts may still meet, and what DELETE keeps.
func (s *server) documentChoices() {
	oapi := s.api.OpenAPI()
	if !strings.Contains(oapi.Info.Description, domainRules) {
		oapi.Info.Description += domainRules
	}
	for _, item := range oapi.Paths {
		if op := item.Delete; op != nil && keptAfterDelete[op.OperationID] != "" {
			op.Description = strings.TrimSpace(op.Description + " " + keptAfterDelete[op.OperationID])
		}
	}
}
