package database_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fin-orchestrator/fin-orchestrator/shared/database"
	"github.com/fin-orchestrator/fin-orchestrator/shared/money"
	"github.com/fin-orchestrator/fin-orchestrator/shared/pgtest"
)

func TestMigrateIsIdempotent(t *testing.T) {
	db := pgtest.New(t)
	applied, err := database.Migrate(context.Background(), db.Pool)
	if err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if len(applied) != 0 {
		t.Fatalf("second Migrate applied %v again", applied)
	}
}

func TestCurrenciesMatchGo(t *testing.T) {
	db := pgtest.New(t)
	rows, _ := db.Pool.Query(context.Background(), "SELECT code FROM currencies ORDER BY code")
	codes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(codes, money.Currencies()) {
		t.Fatalf("currencies table %v differs from money.Currencies %v: keep the migration and money.go equal", codes, money.Currencies())
	}
}

func TestCaptureSettings(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	for _, table := range []string{"customers", "accounts", "transactions"} {
		var ident string
		if err := db.Pool.QueryRow(ctx, "SELECT relreplident::text FROM pg_class WHERE oid = $1::regclass", table).Scan(&ident); err != nil {
			t.Fatal(err)
		}
		if ident != "f" {
			t.Errorf("%s has REPLICA IDENTITY %q, want FULL (f): updates and deletes need before-images", table, ident)
		}
		var published bool
		if err := db.Pool.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_publication_tables WHERE pubname = 'fin_cdc' AND tablename = $1)", table).Scan(&published); err != nil {
			t.Fatal(err)
		}
		if !published {
			t.Errorf("%s is not in publication fin_cdc", table)
		}
	}
	var cascades []string
	rows, _ := db.Pool.Query(ctx, "SELECT conname FROM pg_constraint WHERE contype = 'f' AND confdeltype IN ('c', 'n', 'd')")
	cascades, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(cascades) > 0 {
		t.Errorf("foreign keys that change or remove rows on delete: %v; financial history must only be protected", cascades)
	}
}

// fixture inserts one customer with a USD and a EUR account, each holding 100.00.
const fixture = `
INSERT INTO customers (customer_id, first_name, last_name, email) VALUES
  ('00000000-0000-4000-8000-000000000001', 'Ada', 'Lovelace', 'ada@example.com');
INSERT INTO accounts (account_id, customer_id, account_type, currency, balance) VALUES
  ('00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-000000000001', 'CHECKING', 'USD', 100),
  ('00000000-0000-4000-8000-0000000000a2', '00000000-0000-4000-8000-000000000001', 'SAVINGS', 'USD', 100),
  ('00000000-0000-4000-8000-0000000000e1', '00000000-0000-4000-8000-000000000001', 'SAVINGS', 'EUR', 100);
INSERT INTO transactions (transaction_id, account_id, transaction_type, amount, currency) VALUES
  ('00000000-0000-4000-8000-0000000000f1', '00000000-0000-4000-8000-0000000000a1', 'DEPOSIT', 100, 'USD');
`

func TestConstraintsReject(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, fixture); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	const cust = "'00000000-0000-4000-8000-000000000001'"
	const usd = "'00000000-0000-4000-8000-0000000000a1'"
	const usd2 = "'00000000-0000-4000-8000-0000000000a2'"
	const eur = "'00000000-0000-4000-8000-0000000000e1'"
	tests := []struct {
		name string
		sql  string
		want string // the constraint (or message part) the error must name
	}{
		{"email without @", `INSERT INTO customers (first_name, last_name, email) VALUES ('A', 'B', 'not-an-email')`, "customers_email_check"},
		{"email with space", `INSERT INTO customers (first_name, last_name, email) VALUES ('A', 'B', 'a b@example.com')`, "customers_email_check"},
		{"duplicate email in other case", `INSERT INTO customers (first_name, last_name, email) VALUES ('A', 'B', 'ADA@example.com')`, "customers_email_key"},
		{"blank first name", `INSERT INTO customers (first_name, last_name, email) VALUES ('  ', 'B', 'b@example.com')`, "customers_first_name_check"},
		{"missing last name", `INSERT INTO customers (first_name, email) VALUES ('A', 'c@example.com')`, "last_name"},
		{"country not ISO 3166", `INSERT INTO customers (first_name, last_name, email, country) VALUES ('A', 'B', 'd@example.com', 'usa')`, "customers_country_check"},
		{"unknown account type", `INSERT INTO accounts (customer_id, account_type, currency) VALUES (` + cust + `, 'BROKERAGE', 'USD')`, "account_type"},
		{"unknown currency", `INSERT INTO accounts (customer_id, account_type, currency) VALUES (` + cust + `, 'CHECKING', 'XYZ')`, "accounts_currency_fkey"},
		{"currency with 0 decimals", `INSERT INTO accounts (customer_id, account_type, currency) VALUES (` + cust + `, 'CHECKING', 'JPY')`, "accounts_currency_fkey"},
		{"unknown customer", `INSERT INTO accounts (customer_id, account_type, currency) VALUES ('00000000-0000-4000-8000-00000000ffff', 'CHECKING', 'USD')`, "accounts_customer_id_fkey"},
		{"negative balance", `UPDATE accounts SET balance = -0.01 WHERE account_id = ` + usd, "accounts_balance_check"},
		{"unknown status", `UPDATE accounts SET status = 'FROZEN' WHERE account_id = ` + usd, "account_status"},
		{"zero amount", `INSERT INTO transactions (account_id, transaction_type, amount, currency) VALUES (` + usd + `, 'DEPOSIT', 0, 'USD')`, "transactions_amount_check"},
		{"negative amount", `INSERT INTO transactions (account_id, transaction_type, amount, currency) VALUES (` + usd + `, 'DEPOSIT', -1, 'USD')`, "transactions_amount_check"},
		{"amount too large", `INSERT INTO transactions (account_id, transaction_type, amount, currency) VALUES (` + usd + `, 'DEPOSIT', 1e17, 'USD')`, "numeric field overflow"},
		{"transfer without destination", `INSERT INTO transactions (account_id, transaction_type, amount, currency) VALUES (` + usd + `, 'TRANSFER', 1, 'USD')`, "transactions_related_account_check"},
		{"transfer to itself", `INSERT INTO transactions (account_id, transaction_type, amount, currency, related_account_id) VALUES (` + usd + `, 'TRANSFER', 1, 'USD', ` + usd + `)`, "transactions_related_account_check"},
		{"deposit with a destination", `INSERT INTO transactions (account_id, transaction_type, amount, currency, related_account_id) VALUES (` + usd + `, 'DEPOSIT', 1, 'USD', ` + usd2 + `)`, "transactions_related_account_check"},
		{"transfer across currencies", `INSERT INTO transactions (account_id, transaction_type, amount, currency, related_account_id) VALUES (` + usd + `, 'TRANSFER', 1, 'USD', ` + eur + `)`, "transactions_related_account_currency_fkey"},
		{"posting in another currency than the account", `INSERT INTO transactions (account_id, transaction_type, amount, currency) VALUES (` + usd + `, 'DEPOSIT', 1, 'EUR')`, "transactions_account_currency_fkey"},
		{"changing a posted amount", `UPDATE transactions SET amount = 5 WHERE transaction_id = '00000000-0000-4000-8000-0000000000f1'`, "reverse it instead"},
		{"deleting a posting", `DELETE FROM transactions WHERE transaction_id = '00000000-0000-4000-8000-0000000000f1'`, "reverse it instead"},
		{"deleting a customer with accounts", `DELETE FROM customers WHERE customer_id = ` + cust, "accounts_customer_id_fkey"},
		{"deleting an account with postings", `DELETE FROM accounts WHERE account_id = ` + usd, "transactions_account_currency_fkey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := db.Pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			_, err = tx.Exec(ctx, tt.sql)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("%s: unexpected error %v", tt.sql, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("%s was accepted; want an error naming %s", tt.sql, tt.want)
			}
			var pg *pgconn.PgError
			if !errors.As(err, &pg) {
				t.Fatalf("%s: error %v is not from Postgres", tt.sql, err)
			}
			if !strings.Contains(pg.ConstraintName+" "+pg.Message+" "+pg.ColumnName, tt.want) {
				t.Fatalf("%s: error %q (constraint %q) does not name %q", tt.sql, pg.Message, pg.ConstraintName, tt.want)
			}
		})
	}
}

func TestUpdatesAreStampedByTheDatabase(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, fixture); err != nil {
		t.Fatal(err)
	}
	var version int64
	var createdSame, updatedLater bool
	err := db.Pool.QueryRow(ctx, `WITH before AS (SELECT created_at, updated_at FROM customers WHERE email = 'ada@example.com')
		UPDATE customers c SET city = 'London', created_at = '2000-01-01', version = 99
		FROM before b WHERE c.email = 'ada@example.com'
		RETURNING c.version, c.created_at = b.created_at, c.updated_at >= b.updated_at`).Scan(&version, &createdSame, &updatedLater)
	if err != nil {
		t.Fatal(err)
	}
	if version != 2 || !createdSame || !updatedLater {
		t.Fatalf("after update: version %d (want 2), created_at kept %v, updated_at moved %v", version, createdSame, updatedLater)
	}
}
