package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
)

// Problem is the RFC 9457 body of every error the API returns. Code is a stable, machine-readable
// name for the problem (insufficient_funds, ...), so clients never parse Detail.
type Problem struct {
	huma.ErrorModel
	Code string `json:"code,omitempty" example:"insufficient_funds" doc:"Stable machine-readable name of the problem"`
}

// defaultCodes names the problems Huma raises itself (validation, body size, ...).
var defaultCodes = map[int]string{
	http.StatusBadRequest:            "bad_request",
	http.StatusUnauthorized:          "unauthorized",
	http.StatusForbidden:             "forbidden",
	http.StatusNotFound:              "not_found",
	http.StatusMethodNotAllowed:      "method_not_allowed",
	http.StatusConflict:              "conflict",
	http.StatusPreconditionFailed:    "precondition_failed",
	http.StatusRequestEntityTooLarge: "body_too_large",
	http.StatusUnsupportedMediaType:  "unsupported_media_type",
	http.StatusUnprocessableEntity:   "validation_failed",
	http.StatusInternalServerError:   "internal",
}

func init() {
	// Every error Huma builds, including its own validation errors, becomes a Problem with a code.
	huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
		p := &Problem{ErrorModel: huma.ErrorModel{Status: status, Title: http.StatusText(status), Detail: msg}, Code: defaultCodes[status]}
		for _, err := range errs {
			if err == nil {
				continue
			}
			var d huma.ErrorDetailer
			if errors.As(err, &d) {
				p.Errors = append(p.Errors, d.ErrorDetail())
			} else {
				p.Errors = append(p.Errors, &huma.ErrorDetail{Message: err.Error()})
			}
		}
		return p
	}
}

// newProblem builds a problem with a code and, when field is set, the location it concerns
// ("body.amount", "query.limit").
func newProblem(status int, code, detail, location string) *Problem {
	p := huma.NewError(status, detail).(*Problem)
	p.Code = code
	if location != "" {
		p.Errors = []*huma.ErrorDetail{{Location: location, Message: detail}}
	}
	return p
}

// domainProblems maps the bank's errors to statuses and codes; the first match wins.
var domainProblems = []struct {
	err    error
	status int
	code   string
	field  string
}{
	{bank.ErrNotFound, http.StatusNotFound, "not_found", ""},
	{bank.ErrInsufficientFunds, http.StatusUnprocessableEntity, "insufficient_funds", "body.amount"},
	{bank.ErrAccountInactive, http.StatusConflict, "account_inactive", ""},
	{bank.ErrCurrencyMismatch, http.StatusUnprocessableEntity, "currency_mismatch", "body.currency"},
	{bank.ErrSameAccount, http.StatusUnprocessableEntity, "same_account", "body.related_account_id"},
	{bank.ErrAlreadyReversed, http.StatusConflict, "already_reversed", ""},
	{bank.ErrReversalOfReversal, http.StatusConflict, "reversal_of_reversal", ""},
	{bank.ErrVersionMismatch, http.StatusPreconditionFailed, "precondition_failed", "header.If-Match"},
	{bank.ErrHasActiveAccounts, http.StatusConflict, "has_active_accounts", ""},
	{bank.ErrBalanceNotZero, http.StatusConflict, "balance_not_zero", ""},
	{bank.ErrCustomerClosed, http.StatusConflict, "customer_closed", "body.customer_id"},
	{bank.ErrEmailTaken, http.StatusConflict, "email_taken", "body.email"},
	{bank.ErrImmutable, http.StatusUnprocessableEntity, "immutable_field", "body.amount"},
}

// problemFor turns an error from the domain into the API's answer. Errors the domain does not
// name are internal: logged with the request id, and answered 500 without their text.
func problemFor(ctx context.Context, err error) error {
	var sp huma.StatusError
	if errors.As(err, &sp) {
		return sp
	}
	// Database errors the bank did not see (the idempotency store's, say) get the same meaning.
	err = bank.Translate(err)
	var fe *bank.FieldError
	if errors.As(err, &fe) {
		in := fe.In
		if in == "" {
			in = "body"
		}
		return newProblem(http.StatusUnprocessableEntity, "invalid_field", fe.Error(), in+"."+fe.Field)
	}
	for _, m := range domainProblems {
		if errors.Is(err, m.err) {
			return newProblem(m.status, m.code, err.Error(), m.field)
		}
	}
	if errors.Is(err, bank.ErrInvalid) {
		return newProblem(http.StatusUnprocessableEntity, "invalid", err.Error(), "")
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return newProblem(http.StatusServiceUnavailable, "unavailable", "the request was cancelled or timed out; retry it", "")
	}
	id := requestID(ctx)
	slog.ErrorContext(ctx, "request failed", "request_id", id, "error", err)
	return newProblem(http.StatusInternalServerError, "internal", "internal error; quote request id "+id, "")
}
