package database_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/fin-orchestrator/fin-orchestrator/shared/pgtest"
)

// Every table's id default is a UUIDv7 (RFC 9562) of the insert's time, and ids follow insertion
// order: the first 64 bits (milliseconds, version, sub-millisecond fraction) never go down from
// one row to the next in the order they were written, so a read in key order walks the heap in
// the order it was written (docs/design.md, "Ids are UUIDs").
func TestIDDefaultsAreTimeOrderedV7(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	before := time.Now().Add(-time.Second) // the database's clock, not ours: a second of slack
	_, err := db.Pool.Exec(ctx, `
		INSERT INTO customers (first_name, last_name, email) VALUES ('Ada', 'Lovelace', 'ada@example.com');
		INSERT INTO accounts (customer_id, account_type, currency)
			SELECT customer_id, 'CHECKING', 'EUR' FROM customers, generate_series(1, 2000);
		INSERT INTO transactions (account_id, transaction_type, amount, currency)
			SELECT account_id, 'DEPOSIT', 1.00, 'EUR' FROM accounts`)
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now().Add(time.Second)
	for _, tc := range []struct{ table, id string }{
		{"customers", "customer_id"}, {"accounts", "account_id"}, {"transactions", "transaction_id"},
	} {
		t.Run(tc.table, func(t *testing.T) {
			// ctid order is the order the rows were written (a new table, nothing deleted).
			rows, _ := db.Pool.Query(ctx, "SELECT "+tc.id+" FROM "+tc.table+" ORDER BY ctid")
			ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
			if err != nil {
				t.Fatal(err)
			}
			var prev uint64
			for i, id := range ids {
				if id.Version() != 7 || id.Variant() != uuid.RFC4122 {
					t.Fatalf("row %d: id %s is version %d, variant %v; want 7, RFC 9562", i, id, id.Version(), id.Variant())
				}
				if at := time.Unix(id.Time().UnixTime()); at.Before(before) || at.After(after) {
					t.Fatalf("row %d: id %s carries %s, outside the insert's %s..%s", i, id, at, before, after)
				}
				head := binary.BigEndian.Uint64(id[:8])
				if head < prev {
					t.Fatalf("row %d: id %s sorts before the row written before it", i, id)
				}
				prev = head
			}
		})
	}
}
