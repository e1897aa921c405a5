package snowflake_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
	"github.com/fin-orchestrator/fin-orchestrator/shared/history"
)

// TestHistoryReaderDialect runs the API's history queries through gosnowflake on fakesnow: the
// ? binding, the time bound as text and cast to TIMESTAMPTZ, the balance cast to text, and
// timestamps with an offset read back in UTC. The dims here are tables with the columns and
// Snowflake types of dbt's gold views (real dbt on fakesnow is the dbt suite's part), and as_of
// reads from gold.cut: none yet, then a cut before the account's delete.
func TestHistoryReaderDialect(t *testing.T) {
	wh := openFake(t, fakesnow(t), t.TempDir())
	ctx := context.Background()
	customer, account := uuid.New(), uuid.New()
	stmts := []string{
		"CREATE SCHEMA IF NOT EXISTS GOLD",
		`CREATE TABLE GOLD.DIM_ACCOUNTS (ACCOUNT_VERSION_KEY VARCHAR, ACCOUNT_ID VARCHAR, CUSTOMER_ID VARCHAR,
			ACCOUNT_TYPE VARCHAR, CURRENCY VARCHAR, NICKNAME VARCHAR, BALANCE NUMBER(18,2), STATUS VARCHAR,
			CREATED_AT TIMESTAMP_TZ, UPDATED_AT TIMESTAMP_TZ, VERSION NUMBER(19,0), IS_DELETED BOOLEAN,
			EFFECTIVE_FROM TIMESTAMP_TZ, EFFECTIVE_TO TIMESTAMP_TZ, IS_CURRENT BOOLEAN, LSN NUMBER(19,0))`,
	}
	a, c := account.String(), customer.String()
	rows := [][]any{
		{a + "@100", a, c, "CHECKING", "USD", nil, "0.00", "ACTIVE", "2026-11-25 09:00:00+01:00", "2026-11-25 09:00:00+01:00", 1, false, "2026-11-25 09:00:00+01:00", "2026-11-25 09:00:10+01:00", false, 100},
		{a + "@200", a, c, "CHECKING", "USD", "everyday", "12.30", "ACTIVE", "2026-11-25 09:00:00+01:00", "2026-11-25 09:00:10+01:00", 2, false, "2026-11-25 09:00:10+01:00", "2026-11-25 09:00:20+01:00", false, 200},
		{a + "@300", a, c, "CHECKING", "USD", "everyday", "12.30", "ACTIVE", "2026-11-25 09:00:00+01:00", "2026-11-25 09:00:10+01:00", 2, true, "2026-11-25 09:00:20+01:00", nil, true, 300},
	}
	for _, s := range stmts {
		if _, err := wh.DB().ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	for _, r := range rows {
		_, err := wh.DB().ExecContext(ctx, `INSERT INTO GOLD.DIM_ACCOUNTS SELECT ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS TIMESTAMP_TZ),
			CAST(? AS TIMESTAMP_TZ), ?, ?, CAST(? AS TIMESTAMP_TZ), CAST(? AS TIMESTAMP_TZ), ?, ?`, r...)
		if err != nil {
			t.Fatalf("insert a version: %v", err)
		}
	}
	r := history.New(history.DB{DB: wh.DB()})
	vs, more, err := r.AccountVersions(ctx, account, history.Page{Limit: 10})
	if err != nil || more || len(vs) != 3 {
		t.Fatalf("AccountVersions: %d versions, more %v, err %v; want 3", len(vs), more, err)
	}
	from := time.Date(2026, 11, 25, 8, 0, 10, 0, time.UTC)
	if v := vs[1]; v.Balance.String() != "12.3" || !v.ValidFrom.Equal(from) || v.ValidFrom.Location() != time.UTC ||
		v.ValidTo == nil || v.Nickname == nil || *v.Nickname != "everyday" || v.VersionID != a+"@200" {
		t.Errorf("second version %+v: want balance 12.30, valid from %s UTC to 08:00:20, nickname everyday", v, from)
	}
	if !vs[2].IsDeleted || !vs[2].IsCurrent || vs[2].ValidTo != nil {
		t.Errorf("last version %+v: want the current delete, valid_to null", vs[2].Validity)
	}
	checkCutDialect(t, wh.DB(), r, account, from)
	if _, _, err := r.AccountVersions(ctx, uuid.New(), history.Page{Limit: 10}); !errors.Is(err, bank.ErrNotFound) {
		t.Errorf("versions of an unknown account: err %v, want bank.ErrNotFound", err)
	}
}

// checkCutDialect: as_of before gold.cut exists, with it empty, then with a cut at the account's
// second version (lsn 200, committed at from): its delete (lsn 300) is past the cut, so a time
// after it is answered as of the cut.
func checkCutDialect(t *testing.T, db *sql.DB, r *history.Reader, account uuid.UUID, from time.Time) {
	t.Helper()
	ctx := context.Background()
	if _, _, err := r.AccountAsOf(ctx, account, from); !errors.Is(err, history.ErrNoCut) {
		t.Errorf("as of with no gold.cut: err %v, want history.ErrNoCut", err)
	}
	for _, s := range []string{
		"CREATE TABLE GOLD.CUT (LSN NUMBER(19,0), COMMIT_TS TIMESTAMP_TZ, BUILT_AT TIMESTAMP_TZ)",
		"SELECT 1", // gold.cut empty
		"INSERT INTO GOLD.CUT SELECT 200, CAST('2026-11-25 09:00:10+01:00' AS TIMESTAMP_TZ), CAST('2026-11-25 09:01:00+01:00' AS TIMESTAMP_TZ)",
	} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if strings.HasPrefix(s, "SELECT") {
			if _, _, err := r.AccountAsOf(ctx, account, from); !errors.Is(err, history.ErrNoCut) {
				t.Errorf("as of with gold.cut empty: err %v, want history.ErrNoCut", err)
			}
		}
	}
	a := account.String()
	for _, c := range []struct {
		at   time.Time
		want string // version id; "" for not found
	}{
		{from.Add(-time.Hour), ""}, // before creation
		{from.Add(-time.Second), a + "@100"},
		{from.Add(5 * time.Second), a + "@200"},
		{from.Add(time.Hour), a + "@200"}, // after the delete, which is past the cut
	} {
		got, cut, err := r.AccountAsOf(ctx, account, c.at)
		switch {
		case c.want == "" && !errors.Is(err, bank.ErrNotFound):
			t.Errorf("as of %s: err %v, want bank.ErrNotFound", c.at, err)
		case c.want != "" && (err != nil || got.VersionID != c.want):
			t.Errorf("as of %s: %+v, %v; want version %s", c.at, got.Validity, err, c.want)
		case err == nil && (cut.LSN != 200 || !cut.CommitTS.Equal(from) || cut.CommitTS.Location() != time.UTC):
			t.Errorf("as of %s: cut %+v, want lsn 200 committed at %s UTC", c.at, cut, from)
		}
	}
}
