package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
	"github.com/fin-orchestrator/fin-orchestrator/shared/history"
)

// History is what the API reads past versions through: the warehouse's SCD2 marts
// (*history.Reader over Snowflake or the local DuckDB file). Lists are in log order; a key the
// warehouse never saw, or a time at which the key did not exist, is bank.ErrNotFound. A past
// state is read from gold's consistent cut, returned beside it (history.ErrNoCut before one).
type History interface {
	CustomerVersions(ctx context.Context, id uuid.UUID, p history.Page) ([]history.Customer, bool, error)
	AccountVersions(ctx context.Context, id uuid.UUID, p history.Page) ([]history.Account, bool, error)
	CustomerAsOf(ctx context.Context, id uuid.UUID, t time.Time) (history.Customer, history.Cut, error)
	AccountAsOf(ctx context.Context, id uuid.UUID, t time.Time) (history.Account, history.Cut, error)
}

// historyTimeout bounds one warehouse read: a Snowflake warehouse resuming, or the local file
// lent to a dbt run, answers within it or the request gets 503 (a problem the client can act on)
// before the function's own 15 s timeout would end it with a bare gateway error.
const historyTimeout = 10 * time.Second

// Validity is when a version held, as every history entry shows it.
type Validity struct {
	VersionID string     `json:"version_id" example:"0b5c3a57-95a7-4bd8-9f1f-3b9b2d7d6e00@16777472" doc:"Stable id of this version (id@log position); starting_after takes it"`
	Version   int64      `json:"version" doc:"The row version (the ETag's number) this version had"`
	ValidFrom time.Time  `json:"valid_from" doc:"Commit time of this version"`
	ValidTo   *time.Time `json:"valid_to" doc:"Commit time of the next version; null for the current one"`
	IsCurrent bool       `json:"is_current" doc:"The latest version the warehouse holds (which may be a delete)"`
	IsDeleted bool       `json:"is_deleted" doc:"This version is the row's deletion; its fields are the row as it was deleted"`
}

// CustomerVersion is one version of a customer from the warehouse.
type CustomerVersion struct {
	Customer
	Validity
}

// AccountVersion is one version of an account from the warehouse.
type AccountVersion struct {
	Account
	Validity
}

func validityOut(v history.Validity, version int64) Validity {
	return Validity{VersionID: v.VersionID, Version: version, ValidFrom: v.ValidFrom, ValidTo: v.ValidTo,
		IsCurrent: v.IsCurrent, IsDeleted: v.IsDeleted}
}

func customerVersionOut(c history.Customer) CustomerVersion {
	return CustomerVersion{customerOut(c.Customer), validityOut(c.Validity, c.Version)}
}

func accountVersionOut(a history.Account) AccountVersion {
	return AccountVersion{accountOut(a.Account), validityOut(a.Validity, a.Version)}
}

// AsOfParam asks for the state at a past time instead of the current one.
type AsOfParam struct {
	AsOf string `query:"as_of" format:"date-time" example:"2026-11-25T16:00:00Z" doc:"RFC 3339 time: the state at that time, read from the warehouse's consistent cut instead of the current state from the system of record. A time after the cut's commit time is answered as of the cut (the Warehouse-As-Of header says so); 404 when the row did not exist then; 503 warehouse_not_built before the first build has published a cut"`
}

// CutHeaders say which consistent cut of the warehouse an as_of answer was read from; empty (so
// absent) on an answer from the system of record.
type CutHeaders struct {
	CutLSN    string `header:"Warehouse-Cut-Lsn" doc:"as_of only: the cut's commit position (a WAL position as a decimal): every source transaction committed at or before it is in the answer's warehouse state, wholly, and none after"`
	CutCommit string `header:"Warehouse-Cut-Commit-Time" doc:"as_of only: the commit time of the cut's last transaction (RFC 3339, UTC)"`
	AsOf      string `header:"Warehouse-As-Of" doc:"as_of only: the time the answer is the state at: as_of, or the cut's commit time when as_of is later"`
}

func cutHeaders(c history.Cut, t time.Time) CutHeaders {
	at := t.UTC()
	if at.After(c.CommitTS) {
		at = c.CommitTS
	}
	return CutHeaders{CutLSN: strconv.FormatInt(c.LSN, 10), CutCommit: c.CommitTS.Format(time.RFC3339Nano),
		AsOf: at.Format(time.RFC3339Nano)}
}

// at is the as_of time; ok is false when it is absent.
func (p AsOfParam) at() (t time.Time, ok bool, err error) {
	if p.AsOf == "" {
		return t, false, nil
	}
	t, err = time.Parse(time.RFC3339Nano, p.AsOf)
	if err != nil {
		return t, false, newProblem(http.StatusUnprocessableEntity, "invalid_field", "as_of must be an RFC 3339 time such as 2026-11-25T16:00:00Z", "query.as_of")
	}
	return t, true, nil
}

// HistoryPageParams pages through a history.
type HistoryPageParams struct {
	Limit         int    `query:"limit" minimum:"1" maximum:"1000" default:"100" doc:"Page size"`
	StartingAfter string `query:"starting_after" minLength:"1" maxLength:"80" doc:"The version_id of the last version of the previous page"`
}

func (p HistoryPageParams) page() history.Page {
	return history.Page{Limit: p.Limit, StartingAfter: p.StartingAfter}
}

// readHistory runs one warehouse read, bounded in time, and turns its failure into the API's
// answer: 503 when there is no warehouse or it does not answer.
func readHistory[T any](ctx context.Context, h History, read func(context.Context, History) (T, error)) (T, error) {
	var zero T
	if h == nil {
		return zero, newProblem(http.StatusServiceUnavailable, "warehouse_unavailable",
			"no warehouse is configured for history: this API serves current state only", "")
	}
	ctx, cancel := context.WithTimeout(ctx, historyTimeout)
	defer cancel()
	v, err := read(ctx, h)
	switch {
	case err == nil:
		return v, nil
	case errors.Is(err, bank.ErrNotFound):
		return zero, newProblem(http.StatusNotFound, "not_found", err.Error(), "")
	case errors.Is(err, history.ErrBadCursor):
		return zero, newProblem(http.StatusUnprocessableEntity, "invalid_field", err.Error(), "query.starting_after")
	case errors.Is(err, history.ErrNoCut):
		return zero, newProblem(http.StatusServiceUnavailable, "warehouse_not_built",
			"the warehouse has not published a consistent cut yet (no dbt build has completed): past states cannot be read until one has; retry later", "")
	}
	// The warehouse is down, paused too long, or has not been built yet (no dbt run).
	id := requestID(ctx)
	slog.ErrorContext(ctx, "history read failed", "request_id", id, "error", err)
	return zero, newProblem(http.StatusServiceUnavailable, "warehouse_unavailable",
		"the warehouse did not answer (or has no history built yet); retry later, quoting request id "+id, "")
}

// historyOp declares a history read, with the answers it may give besides 200; customer says
// what a customer token may read.
func (s *server) historyOp(path, id, summary, customer string) huma.Operation {
	op := s.op(http.MethodGet, path, id, summary, ScopeRead, customer)
	op.Errors = historyErrors
	return op
}

// What a customer token may read of customers and of accounts, in the operations' descriptions.
const (
	ownCustomerOnly = "its own customer only; any other id answers 404, as an unknown one does."
	ownAccountsOnly = "its own customer's accounts only; any other id answers 404, as an unknown one does."
)

// historyErrors are the statuses a warehouse read may answer.
var historyErrors = []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
	http.StatusUnprocessableEntity, http.StatusServiceUnavailable}

func (s *server) registerHistory() {
	huma.Register(s.api, s.historyOp("/customers/{customer_id}/history", "customer-history",
		"Every version of a customer, from the warehouse (oldest first)", ownCustomerOnly),
		func(ctx context.Context, in *struct {
			CustomerPath
			HistoryPageParams
		}) (*struct{ Body List[CustomerVersion] }, error) {
			id, err := parseID(in.CustomerID, "path.customer_id")
			if err != nil {
				return nil, err
			}
			l, err := readHistory(ctx, s.history, func(ctx context.Context, h History) (List[CustomerVersion], error) {
				rows, more, err := h.CustomerVersions(ctx, id, in.page())
				return hideHistory(listOut(rows, more, customerVersionOut), err,
					func() (bool, error) { return seeCustomer(ctx, id) == nil, nil },
					func() error { return history.NeverSeen("customer", id) })
			})
			if err != nil {
				return nil, err
			}
			return &struct{ Body List[CustomerVersion] }{l}, nil
		})

	huma.Register(s.api, s.historyOp("/accounts/{account_id}/history", "account-history",
		"Every version of an account, from the warehouse (oldest first); each posting is a version", ownAccountsOnly),
		func(ctx context.Context, in *struct {
			AccountPath
			HistoryPageParams
		}) (*struct{ Body List[AccountVersion] }, error) {
			id, err := parseID(in.AccountID, "path.account_id")
			if err != nil {
				return nil, err
			}
			l, err := readHistory(ctx, s.history, func(ctx context.Context, h History) (List[AccountVersion], error) {
				rows, more, err := h.AccountVersions(ctx, id, in.page())
				return hideHistory(listOut(rows, more, accountVersionOut), err,
					func() (bool, error) { return ownsAccounts(ctx, s.pool, id) },
					func() error { return history.NeverSeen("account", id) })
			})
			if err != nil {
				return nil, err
			}
			return &struct{ Body List[AccountVersion] }{l}, nil
		})
}

// versionAt is a version read as of a time, with the cut it was read from.
type versionAt[T any] struct {
	v   T
	cut history.Cut
}

// customerAsOf is GET /customers/{id}?as_of=t: the version valid at t in the warehouse's cut,
// without an ETag (it is not a representation PUT may be conditioned on).
func (s *server) customerAsOf(ctx context.Context, id uuid.UUID, t time.Time) (*customerOne, error) {
	c, err := readHistory(ctx, s.history, func(ctx context.Context, h History) (versionAt[history.Customer], error) {
		c, cut, err := h.CustomerAsOf(ctx, id, t)
		return hideHistory(versionAt[history.Customer]{c, cut}, err, func() (bool, error) { return seeCustomer(ctx, id) == nil, nil },
			func() error { return history.NotAt("customer", id, t) })
	})
	if err != nil {
		return nil, err
	}
	return &customerOne{CutHeaders: cutHeaders(c.cut, t), Body: customerOut(c.v.Customer)}, nil
}

// accountAsOf is GET /accounts/{id}?as_of=t (see customerAsOf).
func (s *server) accountAsOf(ctx context.Context, id uuid.UUID, t time.Time) (*accountOne, error) {
	a, err := readHistory(ctx, s.history, func(ctx context.Context, h History) (versionAt[history.Account], error) {
		a, cut, err := h.AccountAsOf(ctx, id, t)
		return hideHistory(versionAt[history.Account]{a, cut}, err, func() (bool, error) { return ownsAccounts(ctx, s.pool, id) },
			func() error { return history.NotAt("account", id, t) })
	})
	if err != nil {
		return nil, err
	}
	return &accountOne{CutHeaders: cutHeaders(a.cut, t), Body: accountOut(a.v.Account)}, nil
}
