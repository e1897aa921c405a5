package pgtest

import (
	"context"
	_ "embed"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// The queries are files so that the test scripts (scripts/lib.sh, through psql) name what a wait
// waits for exactly as the Go tests do. psql's :'database' is the query's one parameter.
var (
	//go:embed waits.sql
	waitsSQL string
	//go:embed xids.sql
	xidsSQL string
)

// Querier is what Waits and OpenXids query through (a pool, a connection or a transaction).
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Waits names the transactions the backends connected to database wait for, anywhere on the
// cluster, with who holds them: "" when none waits. A logical slot being created in database (by
// a capture, by Debezium, by CreateSlot) waits this way for every transaction that held an id
// when its creation began, in any database: time a neighbour holds it is not the test's.
func Waits(ctx context.Context, q Querier, database string) (string, error) {
	return lines(ctx, q, strings.ReplaceAll(waitsSQL, ":'database'", "$1"), database)
}

// OpenXids names the open transactions of the cluster holding a transaction id for a second or
// more, oldest first: what would hold a logical slot created now. Failed waits print it.
func OpenXids(ctx context.Context, q Querier) (string, error) {
	return lines(ctx, q, xidsSQL)
}

// lines is the one text column of the rows of sql, joined by "; ".
func lines(ctx context.Context, q Querier, sql string, args ...any) (string, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return "", fmt.Errorf("query the cluster's transactions: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("query the cluster's transactions: %w", err)
	}
	return strings.Join(out, "; "), nil
}

// Describe is OpenXids for a failure message: "none" when no transaction has held an id for a second, the error
// when the look-up fails.
func Describe(ctx context.Context, q Querier) string {
	s, err := OpenXids(ctx, q)
	switch {
	case err != nil:
		return err.Error()
	case s == "":
		return "none open for a second or more"
	}
	return s
}
