package snowflakeapi_test

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/fin-orchestrator/fin-orchestrator/shared/history"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/snowflakeapi"
)

func TestQueryTypesAndBindings(t *testing.T) {
	rowType := `[{"name":"BALANCE","type":"fixed","scale":2,"precision":18,"nullable":false},
		{"name":"VERSION","type":"fixed","scale":0,"precision":19,"nullable":false},
		{"name":"NICKNAME","type":"text","nullable":true},
		{"name":"IS_CURRENT","type":"boolean","nullable":false},
		{"name":"EFFECTIVE_FROM","type":"timestamp_tz","scale":9,"nullable":false},
		{"name":"LOADED_AT","type":"timestamp_ntz","scale":6,"nullable":false}]`
	f := newSQLAPI(t, func(w http.ResponseWriter, r *http.Request, st submitted) {
		reply(w, http.StatusOK, resultSet("h1", rowType, [][]any{
			{"12345678901234.56", "7", nil, "true", "1764057610.123456789 1500", "1764057610.5"},
			{"-0.01", "9223372036854775807", "everyday", "false", "1764057610.000000000 1440", "-1.25"},
		}, 1))
	})
	c := f.client(t)
	type row struct {
		balance  decimal.Decimal
		version  int64
		nickname sql.NullString
		current  bool
		from     time.Time
		loaded   time.Time
	}
	var got []row
	err := history.DB{DB: c.DB()}.QueryRows(context.Background(), "SELECT ... WHERE account_id = ? AND lsn > ?", []any{"a-1", int64(-1)}, func(rows *sql.Rows) error {
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.balance, &r.version, &r.nickname, &r.current, &r.from, &r.loaded); err != nil {
				return err
			}
			got = append(got, r)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("QueryRows: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("%d rows, want 2", len(got))
	}
	plus1h := time.FixedZone("", 3600)
	want := []row{
		{decimal.RequireFromString("12345678901234.56"), 7, sql.NullString{}, true,
			time.Date(2025, 11, 25, 9, 0, 10, 123456789, plus1h), time.Date(2025, 11, 25, 8, 0, 10, 500000000, time.UTC)},
		{decimal.RequireFromString("-0.01"), 9223372036854775807, sql.NullString{String: "everyday", Valid: true}, false,
			time.Date(2025, 11, 25, 8, 0, 10, 0, time.UTC), time.Date(1969, 12, 31, 23, 59, 58, 750000000, time.UTC)},
	}
	for i, w := range want {
		g := got[i]
		if !g.balance.Equal(w.balance) || g.version != w.version || g.nickname != w.nickname || g.current != w.current ||
			!g.from.Equal(w.from) || !g.loaded.Equal(w.loaded) {
			t.Errorf("row %d = %+v\nwant      %+v", i, g, w)
		}
		if _, off := g.from.Zone(); off != map[int]int{0: 3600, 1: 0}[i] {
			t.Errorf("row %d: effective_from in offset %d s, want the value's own offset", i, off)
		}
	}
	st := f.submitted()
	if len(st) != 1 {
		t.Fatalf("%d statements submitted, want 1", len(st))
	}
	s := st[0]
	if s.Database != "FIN" || s.Warehouse != "READ_WH" || s.Role != "FIN_READER" || s.Timeout < 1 || s.Timeout > 60 {
		t.Errorf("statement context %+v: want database FIN, warehouse READ_WH, role FIN_READER, a timeout of 1-60 s", s)
	}
	if b := s.Bindings; len(b) != 2 || b["1"].Type != "TEXT" || b["1"].Value != "a-1" || b["2"].Type != "FIXED" || b["2"].Value != "-1" {
		t.Errorf("bindings %+v, want 1: TEXT a-1, 2: FIXED -1", b)
	}
	if l := f.log(); len(l) != 1 || !strings.HasPrefix(l[0], "POST /api/v2/statements?requestId=") {
		t.Errorf("requests %q, want one POST /api/v2/statements?requestId=...", l)
	}
}

func TestPartitions(t *testing.T) {
	rowType := `[{"name":"N","type":"fixed","scale":0,"precision":19,"nullable":false}]`
	f := newSQLAPI(t, func(w http.ResponseWriter, r *http.Request, st submitted) {
		switch r.Method + " " + r.URL.Path {
		case "POST /api/v2/statements":
			reply(w, http.StatusOK, resultSet("h2", rowType, [][]any{{"1"}, {"2"}}, 3))
		case "GET /api/v2/statements/h2":
			// Later partitions carry only their rows.
			p := r.URL.Query().Get("partition")
			reply(w, http.StatusOK, map[string]string{"1": `{"data":[["3"],["4"]]}`, "2": `{"data":[["5"]]}`}[p])
		default:
			reply(w, http.StatusNotFound, `{"code":"000404","message":"not found"}`)
		}
	})
	got, err := column[int64](context.Background(), f.client(t), "SELECT n FROM t ORDER BY n")
	if err != nil {
		t.Fatalf("QueryRows: %v", err)
	}
	if want := []int64{1, 2, 3, 4, 5}; !slices.Equal(got, want) {
		t.Errorf("rows %v, want %v across 3 partitions", got, want)
	}
	l := f.log()
	if len(l) != 3 || l[1] != "GET /api/v2/statements/h2?partition=1" || l[2] != "GET /api/v2/statements/h2?partition=2" {
		t.Errorf("requests %q: want the POST, then partitions 1 and 2 of h2", l)
	}
}

func TestPollsWhileRunning(t *testing.T) {
	rowType := `[{"name":"X","type":"text","nullable":false}]`
	polls := 0
	f := newSQLAPI(t, func(w http.ResponseWriter, r *http.Request, st submitted) {
		running := `{"code":"333334","message":"Asynchronous execution in progress. Use provided query id to perform query monitoring and management.",
			"statementHandle":"h3","statementStatusUrl":"/api/v2/statements/h3"}`
		switch r.Method + " " + r.URL.Path {
		case "POST /api/v2/statements":
			reply(w, http.StatusAccepted, running)
		case "GET /api/v2/statements/h3":
			if polls++; polls < 2 {
				reply(w, http.StatusAccepted, running)
				return
			}
			reply(w, http.StatusOK, resultSet("h3", rowType, [][]any{{"done"}}, 1))
		}
	})
	got, err := column[string](context.Background(), f.client(t), "SELECT 'done'")
	if err != nil || len(got) != 1 || got[0] != "done" {
		t.Fatalf("QueryRows: %q, %v; want [done] after polling", got, err)
	}
	if l := f.log(); len(l) != 3 || l[1] != "GET /api/v2/statements/h3" || l[2] != l[1] {
		t.Errorf("requests %q: want the POST, then two GETs of the status URL", l)
	}
}

func TestStatementError(t *testing.T) {
	f := newSQLAPI(t, func(w http.ResponseWriter, r *http.Request, st submitted) {
		reply(w, http.StatusUnprocessableEntity, `{"code":"002003","message":"SQL compilation error:\nObject 'GOLD.DIM_ACCOUNTS' does not exist or not authorized.",
			"sqlState":"42S02","statementHandle":"h4"}`)
	})
	_, err := column[string](context.Background(), f.client(t), "SELECT * FROM gold.dim_accounts")
	var e *snowflakeapi.Error
	if !errors.As(err, &e) {
		t.Fatalf("err %v (%T), want a *snowflakeapi.Error", err, err)
	}
	if e.Status != 422 || e.Code != "002003" || e.SQLState != "42S02" || e.Handle != "h4" || !strings.Contains(err.Error(), "does not exist or not authorized") {
		t.Errorf("error %+v (%q): want 422, code 002003, state 42S02, handle h4 and Snowflake's message", e, err)
	}
	if strings.Contains(err.Error(), "eyJ") {
		t.Errorf("the error %q holds a JWT", err)
	}
}

func TestRetriesWithTheSameRequestID(t *testing.T) {
	rowType := `[{"name":"X","type":"fixed","scale":0,"nullable":false}]`
	f := newSQLAPI(t, func(w http.ResponseWriter, r *http.Request, st submitted) {
		if r.URL.Query().Get("retry") != "true" {
			reply(w, http.StatusServiceUnavailable, `{"code":"390000","message":"try again"}`)
			return
		}
		reply(w, http.StatusOK, resultSet("h5", rowType, [][]any{{"1"}}, 1))
	})
	if _, err := column[int64](context.Background(), f.client(t), "SELECT 1"); err != nil {
		t.Fatalf("QueryRows after one 503: %v", err)
	}
	l := f.log()
	if len(l) != 2 {
		t.Fatalf("requests %q, want the POST and its retry", l)
	}
	id := func(s string) string {
		_, q, _ := strings.Cut(s, "requestId=")
		id, _, _ := strings.Cut(q, "&")
		return id
	}
	if id(l[0]) == "" || id(l[0]) != id(l[1]) || !strings.Contains(l[1], "retry=true") {
		t.Errorf("requests %q: want the retry to carry the first request id and retry=true", l)
	}
}

func TestGivesUpAndCancelsAtTheDeadline(t *testing.T) {
	f := newSQLAPI(t, func(w http.ResponseWriter, r *http.Request, st submitted) {
		reply(w, http.StatusAccepted, `{"code":"333334","message":"running","statementHandle":"h6","statementStatusUrl":"/api/v2/statements/h6"}`)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := column[string](ctx, f.client(t), "SELECT system$wait(60)")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the context's deadline", err)
	}
	if s := f.submitted(); len(s) != 1 || s[0].Timeout != 1 {
		t.Errorf("statements %+v: want one, with the context's remaining time (1 s, rounded up) as its timeout", s)
	}
	l := f.log()
	if last := l[len(l)-1]; last != "POST /api/v2/statements/h6/cancel" {
		t.Errorf("last request %q, want the statement's cancel", last)
	}
}

// TestHistoryReader runs the API's history reads through the client against answers in the
// SQL API's shape: the columns history selects, with money as text and TIMESTAMP_TZ values in
// another offset, come back as the exact decimals and UTC times history promises.
func TestHistoryReader(t *testing.T) {
	account, customer := uuid.New(), uuid.New()
	a, cu := account.String(), customer.String()
	rowType := `[{"name":"ACCOUNT_ID","type":"text"},{"name":"CUSTOMER_ID","type":"text"},{"name":"ACCOUNT_TYPE","type":"text"},
		{"name":"CURRENCY","type":"text"},{"name":"NICKNAME","type":"text","nullable":true},{"name":"CAST(BALANCE AS VARCHAR)","type":"text"},
		{"name":"STATUS","type":"text"},{"name":"CREATED_AT","type":"timestamp_tz","scale":9},{"name":"UPDATED_AT","type":"timestamp_tz","scale":9},
		{"name":"VERSION","type":"fixed","scale":0,"precision":19},{"name":"ACCOUNT_VERSION_KEY","type":"text"},
		{"name":"EFFECTIVE_FROM","type":"timestamp_tz","scale":9},{"name":"EFFECTIVE_TO","type":"timestamp_tz","scale":9,"nullable":true},
		{"name":"IS_CURRENT","type":"boolean"},{"name":"IS_DELETED","type":"boolean"}]`
	// 2025-11-25T08:00:00Z is 1764057600; the values are in +01:00 (1440 + 60).
	rows := [][]any{
		{a, cu, "CHECKING", "USD", nil, "0.00", "ACTIVE", "1764057600.000000000 1500", "1764057600.000000000 1500", "1", a + "@100", "1764057600.000000000 1500", "1764057610.000000000 1500", "false", "false"},
		{a, cu, "CHECKING", "USD", "everyday", "12.30", "ACTIVE", "1764057600.000000000 1500", "1764057610.000000000 1500", "2", a + "@200", "1764057610.000000000 1500", nil, "true", "false"},
	}
	f := newSQLAPI(t, func(w http.ResponseWriter, r *http.Request, st submitted) {
		if strings.Contains(st.Statement, "ORDER BY lsn DESC LIMIT 1") { // as of, with the cut's columns
			cutType := strings.TrimSuffix(rowType, "]") + `,{"name":"CUT_LSN","type":"fixed","scale":0,"precision":19},
				{"name":"CUT_COMMIT_TS","type":"timestamp_tz","scale":9}]`
			reply(w, http.StatusOK, resultSet("h7", cutType, [][]any{append(slices.Clone(rows[1]), "200", "1764057610.000000000 1500")}, 1))
			return
		}
		reply(w, http.StatusOK, resultSet("h7", rowType, rows, 1))
	})
	r := history.New(history.DB{DB: f.client(t).DB()})
	ctx := context.Background()
	vs, more, err := r.AccountVersions(ctx, account, history.Page{Limit: 10})
	if err != nil || more || len(vs) != 2 {
		t.Fatalf("AccountVersions: %d versions, more %v, err %v; want 2", len(vs), more, err)
	}
	from := time.Date(2025, 11, 25, 8, 0, 10, 0, time.UTC)
	v := vs[1]
	if v.Balance.StringFixed(2) != "12.30" || v.ValidFrom != from || v.ValidTo != nil || !v.IsCurrent || v.Version != 2 ||
		v.CustomerID != customer || v.Nickname == nil || *v.Nickname != "everyday" || v.UpdatedAt != from {
		t.Errorf("second version %+v: want balance 12.30, valid from %s (UTC) with no end, current, version 2", v, from)
	}
	if to := vs[0].ValidTo; to == nil || !to.Equal(from) || to.Location() != time.UTC {
		t.Errorf("first version valid to %v, want %s UTC", to, from)
	}
	st := f.submitted()[0]
	if !strings.Contains(st.Statement, "FROM gold.dim_accounts WHERE account_id = ? AND lsn > ?") ||
		st.Bindings["1"].Value != a || st.Bindings["2"].Type != "FIXED" || st.Bindings["2"].Value != "-1" {
		t.Errorf("versions statement %q with bindings %+v: want the key as TEXT and the cursor as FIXED", st.Statement, st.Bindings)
	}
	got, cut, err := r.AccountAsOf(ctx, account, from.Add(time.Minute))
	if err != nil || got.VersionID != a+"@200" || cut.LSN != 200 || cut.CommitTS != from {
		t.Errorf("AccountAsOf: %+v, cut %+v, %v; want version @200, cut lsn 200 committed at %s (UTC)", got.Validity, cut, err, from)
	}
	if b := f.submitted()[1].Bindings["2"]; b.Type != "TEXT" || b.Value != "2025-11-25T08:01:10+00:00" {
		t.Errorf("as-of time bound as %+v, want TEXT 2025-11-25T08:01:10+00:00 (cast in SQL)", b)
	}
}

func TestConfigFromEnv(t *testing.T) {
	pemKey := testKeyPEM(t)
	secret := secretMap{"arn:fin/snowflake": `{"private_key":` + jsonString(pemKey) + `,"account":"secret-acct","user":"SECRET_USER"}`,
		"arn:bad": `not json ` + pemKey}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c snowflakeapi.Config)
	}{
		{name: "key in the environment, another server",
			env: map[string]string{"SNOWFLAKE_ACCOUNT": "acct", "SNOWFLAKE_USER": "u", "SNOWFLAKE_DATABASE": "FIN",
				"SNOWFLAKE_ROLE": "R", "SNOWFLAKE_WAREHOUSE": "W", "SNOWFLAKE_PRIVATE_KEY": strings.ReplaceAll(pemKey, "\n", `\n`),
				"SNOWFLAKE_HOST": "127.0.0.1", "SNOWFLAKE_PORT": "8080", "SNOWFLAKE_PROTOCOL": "http"},
			check: func(t *testing.T, c snowflakeapi.Config) {
				if c.Account != "acct" || c.Role != "R" || c.Warehouse != "W" || c.BaseURL != "http://127.0.0.1:8080" || c.PrivateKey == nil {
					t.Errorf("config %+v", c)
				}
			}},
		{name: "secret wins",
			env: map[string]string{"SNOWFLAKE_ACCOUNT": "env-acct", "SNOWFLAKE_USER": "u", "SNOWFLAKE_DATABASE": "FIN", "SNOWFLAKE_SECRET_ID": "arn:fin/snowflake"},
			check: func(t *testing.T, c snowflakeapi.Config) {
				if c.Account != "secret-acct" || c.User != "SECRET_USER" || c.PrivateKey == nil || c.BaseURL != "" {
					t.Errorf("config %+v: want the secret's account, user and key", c)
				}
			}},
		{name: "nothing set", env: map[string]string{},
			wantErr: "SNOWFLAKE_ACCOUNT is not set\nSNOWFLAKE_USER is not set\nSNOWFLAKE_DATABASE is not set\nno private key"},
		{name: "secret not JSON", env: map[string]string{"SNOWFLAKE_SECRET_ID": "arn:bad"}, wantErr: "secret arn:bad is not a JSON object"},
		{name: "secret missing", env: map[string]string{"SNOWFLAKE_SECRET_ID": "arn:none"}, wantErr: "no secret arn:none"},
		{name: "not a key", env: map[string]string{"SNOWFLAKE_ACCOUNT": "a", "SNOWFLAKE_USER": "u", "SNOWFLAKE_DATABASE": "d", "SNOWFLAKE_PRIVATE_KEY": "hello"},
			wantErr: "private key: no PEM block"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := snowflakeapi.ConfigFromEnv(context.Background(), func(k string) string { return tc.env[k] }, secret)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "PRIVATE KEY") {
					t.Errorf("the error %q echoes the key", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ConfigFromEnv: %v", err)
			}
			tc.check(t, c)
		})
	}
}

// column runs query and returns its first column's values.
func column[T any](ctx context.Context, c *snowflakeapi.Client, query string) ([]T, error) {
	rows, err := c.DB().QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// A status URL that points anywhere but the configured server is refused before any request
// goes there: the JWT must never leave for another host.
func TestStatusURLOnlyOnTheServer(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(other.Close)
	for _, status := range []func(base string) string{
		func(string) string { return other.URL + "/api/v2/statements/h4" },
		func(string) string { return "https://evil.example/x" },
		func(base string) string { return base + ".evil.example/x" }, // the server's name as a prefix
	} {
		var f *sqlAPI
		f = newSQLAPI(t, func(w http.ResponseWriter, r *http.Request, st submitted) {
			if r.Method == http.MethodPost && r.URL.Path == "/api/v2/statements" {
				reply(w, http.StatusAccepted, `{"code":"333334","statementHandle":"h4","statementStatusUrl":"`+status(f.srv.URL)+`"}`)
			}
		})
		_, err := column[string](context.Background(), f.client(t), "SELECT 1")
		if err == nil || !strings.Contains(err.Error(), "is not on") {
			t.Errorf("status URL %q: err %v, want a refusal naming the server", status(f.srv.URL), err)
		}
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("%d requests reached another server", n)
	}
}
