package api

import (
	"net/http"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
)

// PageParams are the cursor pagination parameters of every list.
type PageParams struct {
	Limit         int    `query:"limit" minimum:"1" maximum:"100" default:"20" doc:"Page size"`
	StartingAfter string `query:"starting_after" format:"uuid" doc:"The last id of the previous page"`
}

func (p PageParams) page() (bank.Page, error) {
	after, err := parseOptionalID(p.StartingAfter, "query.starting_after")
	return bank.Page{Limit: p.Limit, StartingAfter: after}, err
}

// IdempotencyHeader is the header that makes a write safe to retry.
type IdempotencyHeader struct {
	IdempotencyKey string `header:"Idempotency-Key" minLength:"1" maxLength:"255" doc:"A unique key per intended write (a UUID, say). Retrying with the same key and body returns the first response without writing twice; kept 24 hours."`
}

func (k IdempotencyHeader) write(method, path string, body any, status int) write {
	return write{key: k.IdempotencyKey, method: method, path: path, body: body, successCode: status}
}

// IfMatchHeader carries the ETag a client last read, for optimistic concurrency.
type IfMatchHeader struct {
	IfMatch string `header:"If-Match" doc:"The ETag last read; the write is refused with 412 if the row changed since"`
}

// refuse answers 422 for an attempt to change a field that only postings change.
func refuse(field, detail string) error {
	return newProblem(http.StatusUnprocessableEntity, "immutable_field", detail, "body."+field)
}
