package bank

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	pgxdecimal "github.com/jackc/pgx-shopspring-decimal"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/shopspring/decimal"
)

// fakeAccountRow is a pgx.Row holding one account's columns in accountColumns' order, as pgx
// would decode them into scanAccount's destinations.
type fakeAccountRow struct {
	a   Account
	err error
}

func (r *fakeAccountRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	if len(dest) != 10 {
		return fmt.Errorf("scan into %d destinations, want 10", len(dest))
	}
	*dest[0].(*pgtype.UUID) = pgtype.UUID{Bytes: r.a.ID, Valid: true}
	*dest[1].(*pgtype.UUID) = pgtype.UUID{Bytes: r.a.CustomerID, Valid: true}
	*dest[2].(*string) = string(r.a.Type)
	*dest[3].(*string) = r.a.Currency
	nickname := pgtype.Text{}
	if r.a.Nickname != nil {
		nickname = pgtype.Text{String: *r.a.Nickname, Valid: true}
	}
	*dest[4].(*pgtype.Text) = nickname
	*dest[5].(*pgxdecimal.Decimal) = pgxdecimal.Decimal(r.a.Balance)
	*dest[6].(*string) = string(r.a.Status)
	*dest[7].(*time.Time) = r.a.CreatedAt
	*dest[8].(*time.Time) = r.a.UpdatedAt
	*dest[9].(*int64) = r.a.Version
	return nil
}

// TestScanAccount: scanAccount's pooled destinations never carry one row's values into the
// next (a nickname after none, none after one, a failed scan after a good one), and scanning
// allocates nothing of its own: it runs on every GET /accounts/{id}.
func TestScanAccount(t *testing.T) {
	nick := "Rainy day"
	at := time.Date(2026, 12, 6, 16, 0, 0, 123456000, time.UTC)
	withNick := Account{ID: uuid.MustParse("01a24c1e-a4f2-7472-a086-d1e43911c078"),
		CustomerID: uuid.MustParse("01a24c1e-a4d3-768f-9cdb-d51a577fea00"), Type: Savings, Currency: "EUR",
		Nickname: &nick, Balance: decimal.RequireFromString("12.30"), Status: Active, CreatedAt: at,
		UpdatedAt: at.Add(time.Second), Version: 3}
	without := Account{ID: uuid.MustParse("01a24c1e-a4f2-7472-a086-d1e43911c079"),
		CustomerID: uuid.MustParse("01a24c1e-a4d3-768f-9cdb-d51a577fea01"), Type: Checking, Currency: "USD",
		Balance: decimal.RequireFromString("0.00"), Status: Inactive, CreatedAt: at, UpdatedAt: at, Version: 1}
	failed := errors.New("connection lost")
	for i, tc := range []struct {
		row  fakeAccountRow
		want Account
		err  error
	}{
		{row: fakeAccountRow{a: withNick}, want: withNick},
		{row: fakeAccountRow{a: without}, want: without},
		{row: fakeAccountRow{a: withNick}, want: withNick},
		{row: fakeAccountRow{err: failed}, err: failed},
		{row: fakeAccountRow{a: without}, want: without},
	} {
		got, err := scanAccount(&tc.row)
		if !errors.Is(err, tc.err) {
			t.Fatalf("row %d: error %v, want %v", i, err, tc.err)
		}
		if text(got) != text(tc.want) {
			t.Errorf("row %d: got %s, want %s", i, text(got), text(tc.want))
		}
	}
	row := &fakeAccountRow{a: without} // a pointer: boxing the struct itself would allocate
	if n := testing.AllocsPerRun(100, func() { _, _ = scanAccount(row) }); n != 0 {
		t.Errorf("scanAccount allocates %v times a row, want 0", n)
	}
}

// text is a's fields with the nickname's value, not its address.
func text(a Account) string {
	nickname := "<null>"
	if a.Nickname != nil {
		nickname = *a.Nickname
	}
	a.Nickname = nil
	return fmt.Sprintf("%+v nickname:%s", a, nickname)
}
