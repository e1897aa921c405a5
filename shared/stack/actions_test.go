package stack

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fin-orchestrator/fin-orchestrator/shared/api"
	"github.com/fin-orchestrator/fin-orchestrator/shared/console"
	"github.com/fin-orchestrator/fin-orchestrator/shared/dbtrun"
	"github.com/fin-orchestrator/fin-orchestrator/shared/kafka"
	"github.com/fin-orchestrator/fin-orchestrator/shared/landing"
	"github.com/fin-orchestrator/fin-orchestrator/shared/objectstore"
	"github.com/fin-orchestrator/fin-orchestrator/shared/pgtest"
	"github.com/fin-orchestrator/fin-orchestrator/shared/s3local"
)

// actionStack is a stack with what the actions touch really running: Postgres (the signal
// table), the local S3 (the DLQ), the embedded broker (replays), the template's build queue, and
// the console's handler with the API's token check.
type actionStack struct {
	*Stack
	srv  *httptest.Server
	auth api.AuthConfig
}

func newActionStack(t *testing.T) *actionStack {
	t.Helper()
	ctx := t.Context()
	db := pgtest.New(t)
	s := testStack(t, Config{Pool: db.Pool, Bucket: "lake"})
	creds, err := s3local.EnsureCredentials(s3local.CredentialsPath(s.cfg.StateDir))
	if err != nil {
		t.Fatal(err)
	}
	s3srv, err := s3local.Start(ctx, "127.0.0.1:0", filepath.Join(s.cfg.StateDir, "s3"), func(events.S3Event) {},
		s3local.WithBuckets("lake"), s3local.WithCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s3srv.Close() })
	if s.s3, err = objectstore.Open(objectstore.Config{Endpoint: s3srv.URL, AccessKey: creds.AccessKeyID, SecretKey: creds.SecretAccessKey}); err != nil {
		t.Fatal(err)
	}
	seeds, stop, err := kafka.StartEmbedded(ctx, kafka.EmbeddedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	s.brokers = seeds
	if s.producer, err = kafka.NewClient(seeds); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.producer.Close)
	auth := api.AuthConfig{Secret: bytes.Repeat([]byte("k"), 32), Issuer: api.DevIssuer, Audience: api.DevAudience}
	v, err := api.NewVerifier(ctx, auth)
	if err != nil {
		t.Fatal(err)
	}
	s.token = "console-token-0123456789"
	s.apiAuth = auth
	extra, err := s.actionHandlers(v)
	if err != nil {
		t.Fatal(err)
	}
	h := console.Handler(s.token, &s.codes, func(context.Context) console.Status { return console.Status{} }, extra)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &actionStack{Stack: s, srv: srv, auth: auth}
}

// call sends an action's request with the given headers; it returns the status and the body.
func (a *actionStack) call(t *testing.T, path, body string, header map[string]string) (int, string) {
	t.Helper()
	method := http.MethodPost
	if body == "" {
		method = http.MethodGet
	}
	req, _ := http.NewRequest(method, a.srv.URL+path, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func (a *actionStack) bearer(t *testing.T, scopes ...string) map[string]string {
	tok, err := a.auth.IssueToken("ops-alice", scopes, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"Authorization": "Bearer " + tok}
}

// Each action is refused without an operator's token (the console's own token or cookie does
// not act), whatever its arguments; refusals run nothing and record nothing.
func TestActionsNeedAnOperatorToken(t *testing.T) {
	a := newActionStack(t)
	expired, _ := a.auth.IssueToken("ops-alice", []string{api.ScopeOperator}, -time.Hour)
	other := a.auth
	other.Secret = bytes.Repeat([]byte("x"), 32)
	forged, _ := other.IssueToken("mallory", []string{api.ScopeOperator}, time.Hour)
	other.Secret, other.Audience = a.auth.Secret, "someone-else"
	elsewhere, _ := other.IssueToken("ops-alice", []string{api.ScopeOperator}, time.Hour)
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"no token", nil, http.StatusUnauthorized},
		{"the console's cookie alone", map[string]string{"Cookie": "fin_console=" + a.token}, http.StatusUnauthorized},
		{"the console's token as a bearer", map[string]string{"Authorization": "Bearer " + a.token}, http.StatusUnauthorized},
		{"an expired operator token", map[string]string{"Authorization": "Bearer " + expired}, http.StatusUnauthorized},
		{"an operator token signed by another key", map[string]string{"Authorization": "Bearer " + forged}, http.StatusUnauthorized},
		{"an operator token for another audience", map[string]string{"Authorization": "Bearer " + elsewhere}, http.StatusUnauthorized},
		{"a service token without the operator scope", a.bearer(t, api.ScopeRead, api.ScopeWrite, api.ScopeService), http.StatusForbidden},
	} {
		for _, action := range []string{"build", "dlq-replay", "snapshot"} {
			if got, body := a.call(t, "/api/actions/"+action, "{}", tc.header); got != tc.want {
				t.Errorf("%s, %s: %d %s; want %d", tc.name, action, got, body, tc.want)
			}
		}
	}
	if q := a.buildQueue(t); q.Len() != 0 {
		t.Errorf("a refused build queued %d messages", q.Len())
	}
	if n := a.signals(t); n != 0 {
		t.Errorf("a refused snapshot wrote %d signals", n)
	}
	if _, list := a.call(t, "/api/actions", "", map[string]string{"Cookie": "fin_console=" + a.token}); list != "[]\n" {
		t.Errorf("refusals were recorded as actions: %s", list)
	}
}

func (a *actionStack) buildQueue(t *testing.T) interface{ Len() int } {
	q := a.queues[a.tpl.Queues["BuildRequests"].URL]
	if q == nil {
		t.Fatal("template.yaml has no BuildRequests queue")
	}
	return q
}

func (a *actionStack) signals(t *testing.T) int {
	var n int
	if err := a.cfg.Pool.QueryRow(t.Context(), "SELECT count(*) FROM "+SignalTable).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Each action does what it says through the stack's own path, and each one, done or refused for
// its arguments, is recorded with its subject, arguments and outcome and listed newest first.
func TestActionsTakeEffectAndAreRecorded(t *testing.T) {
	a := newActionStack(t)
	op := a.bearer(t, api.ScopeOperator)
	a.putDLQ(t, "dlq/fin.public.accounts/0-7.json", "fin.public.accounts", "k7", `{"op":"c"}`)
	for _, tc := range []struct {
		action, args string
		want         int
		check        func(t *testing.T)
	}{
		{"build", `{"model":"fct_balances"}`, http.StatusOK, func(t *testing.T) { a.wantBuild(t, "fct_balances+") }},
		{"build", `{}`, http.StatusOK, func(t *testing.T) { a.wantBuild(t, "") }},
		{"build", `{"model":"x+ --full-refresh"}`, http.StatusBadRequest, func(t *testing.T) {}},
		{"snapshot", `{"tables":["accounts"]}`, http.StatusOK, func(t *testing.T) { a.wantSignal(t, `["public.accounts"]`) }},
		{"snapshot", `{"tables":["idempotency_keys"]}`, http.StatusBadRequest, func(t *testing.T) {}},
		{"dlq-replay", `{}`, http.StatusOK, func(t *testing.T) { a.wantReplayed(t, "fin.public.accounts", "k7", `{"op":"c"}`) }},
		{"dlq-replay", `{"keys":["bronze/x"]}`, http.StatusBadRequest, func(t *testing.T) {}},
	} {
		if got, body := a.call(t, "/api/actions/"+tc.action, tc.args, op); got != tc.want {
			t.Fatalf("%s %s: %d %s; want %d", tc.action, tc.args, got, body, tc.want)
		}
		tc.check(t)
	}
	_, list := a.call(t, "/api/actions?limit=3", "", map[string]string{"Cookie": "fin_console=" + a.token})
	var recs []console.Record
	if err := json.Unmarshal([]byte(list), &recs); err != nil || len(recs) != 3 {
		t.Fatalf("GET /api/actions?limit=3: %s (%v); want the last 3 records", list, err)
	}
	last := recs[0]
	if last.ID != 7 || last.Subject != "ops-alice" || last.Action != "dlq-replay" || last.OK || string(last.Args) != `{"keys":["bronze/x"]}` ||
		!strings.Contains(last.Outcome, "not a dlq/ object key") || time.Since(last.At) > time.Minute {
		t.Errorf("the last record %+v; want id 7, ops-alice's refused dlq-replay with its arguments and why", last)
	}
	if recs[1].Action != "dlq-replay" || !recs[1].OK || recs[1].Outcome != "replayed 1 of 1 DLQ entries" {
		t.Errorf("the replay's record %+v", recs[1])
	}
	_, older := a.call(t, "/api/actions?before=3", "", map[string]string{"Cookie": "fin_console=" + a.token})
	if err := json.Unmarshal([]byte(older), &recs); err != nil || len(recs) != 2 || recs[0].ID != 2 || recs[1].ID != 1 {
		t.Errorf("GET /api/actions?before=3: %s; want records 2 and 1", older)
	}
	// The log outlives the stack: a restart numbers on from it.
	audit, err := console.OpenAudit(AuditPath(a.cfg.StateDir))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := audit.Append(console.Record{Action: "build"}); err != nil || r.ID != 8 {
		t.Errorf("after a restart the next record is %d (%v), want 8", r.ID, err)
	}
}

// wantBuild takes the one message the build queued and reads it as the dbt-runner does.
func (a *actionStack) wantBuild(t *testing.T, selector string) {
	t.Helper()
	q := a.queues[a.tpl.Queues["BuildRequests"].URL]
	msgs := q.Receive(t.Context(), 10, time.Now().Add(time.Second))
	if len(msgs) != 1 {
		t.Fatalf("%d messages on the build queue, want 1", len(msgs))
	}
	q.Delete(msgs[0].ReceiptHandle)
	req, bad := dbtrun.RequestFromSQS(events.SQSEvent{Records: msgs})
	if len(bad) > 0 || req.Select != selector {
		t.Errorf("the dbt-runner builds %q (%v), want %q", req.Select, bad, selector)
	}
}

func (a *actionStack) wantSignal(t *testing.T, collections string) {
	t.Helper()
	var typ, data string
	if err := a.cfg.Pool.QueryRow(t.Context(), "SELECT type, data FROM "+SignalTable).Scan(&typ, &data); err != nil {
		t.Fatal(err)
	}
	if typ != "execute-snapshot" || !strings.Contains(data, `"data-collections":`+collections) || !strings.Contains(data, `"incremental"`) {
		t.Errorf("signal %s %s; want an incremental execute-snapshot of %s", typ, data, collections)
	}
}

func (a *actionStack) putDLQ(t *testing.T, key, topic, k, v string) {
	raw, _ := json.Marshal(landing.DLQEntry{Topic: topic, Reason: "test", KeyBase64: base64.StdEncoding.EncodeToString([]byte(k)),
		ValueBase64: base64.StdEncoding.EncodeToString([]byte(v))})
	if _, err := a.s3.PutObject(t.Context(), "lake", key, bytes.NewReader(raw), int64(len(raw)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
}

// wantReplayed: the record is back on its topic, and the DLQ holds nothing but dlq-replayed/.
func (a *actionStack) wantReplayed(t *testing.T, topic, k, v string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c, err := kgo.NewClient(kgo.SeedBrokers(a.brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fetches := c.PollFetches(ctx)
	var got []string
	fetches.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Key)+" "+string(r.Value)) })
	if !slices.Equal(got, []string{k + " " + v}) {
		t.Errorf("topic %s holds %q, want the replayed record", topic, got)
	}
	var keys []string
	for obj := range a.s3.ListObjects(ctx, "lake", minio.ListObjectsOptions{Recursive: true}) {
		keys = append(keys, obj.Key)
	}
	if len(keys) != 1 || !strings.HasPrefix(keys[0], "dlq-replayed/") {
		t.Errorf("the lake holds %v; want the entry moved to dlq-replayed/", keys)
	}
}

// A model the last build's manifest lacks is refused, naming the models there are.
func TestBuildRefusesAnUnknownModel(t *testing.T) {
	s := testStack(t, Config{})
	dir := filepath.Join(s.cfg.StateDir, "dbt", "target")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{"nodes":{"model.fin.dim_accounts":{"name":"dim_accounts","resource_type":"model"},
		"test.fin.t1":{"name":"t1","resource_type":"test"}}}`), 0o644)
	for _, tc := range []struct {
		model, wantErr string
	}{
		{"dim_accounts", ""},
		{"t1", "models: dim_accounts"},
		{"fct_nothing", `no model "fct_nothing"`},
	} {
		err := s.knownModel(tc.model)
		if (err == nil) != (tc.wantErr == "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("knownModel(%s) = %v; want %q", tc.model, err, tc.wantErr)
		}
	}
}

func TestSnapshotTables(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string // nil: refused
	}{
		{[]string{"public.accounts"}, []string{"public.accounts"}},
		{[]string{"accounts", " customers"}, []string{"public.accounts", "public.customers"}},
		{[]string{"accounts", "public.accounts"}, []string{"public.accounts"}},
		{nil, []string{"public.customers", "public.accounts", "public.transactions"}},
		{[]string{"idempotency_keys"}, nil},
		{[]string{"other.accounts"}, nil},
	} {
		got, err := SnapshotTables(tc.args)
		if tc.want == nil {
			if err == nil {
				t.Errorf("SnapshotTables(%q) = %v; want refused", tc.args, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("SnapshotTables(%q) = %v, %v; want %v", tc.args, got, err, tc.want)
		}
	}
}

// A run keeps its selector, so the console tells an operator's build of a model from the loads'
// and the schedule's builds.
func TestDbtRunKeepsItsSelector(t *testing.T) {
	s := testStack(t, Config{})
	out, _ := json.Marshal(dbtrun.Summary{Selector: "dim_accounts+", ModelsBuilt: 1})
	s.recordDbtRun("loads")(out, nil)
	if r := s.dbtRuns[0]; r.Select != "dim_accounts+" || r.Models != 1 || !r.OK {
		t.Errorf("recorded %+v; want the build of dim_accounts+", r)
	}
}

// The console's local sign-in gives a console session a short-lived token with the operator scope
// alone, which the actions accept and record under its subject; with an IdP of the operator's
// own (a JWKS URL), the stack signs nothing and the route does not exist.
func TestConsoleSignInIssuesAShortOperatorToken(t *testing.T) {
	a := newActionStack(t)
	if got, body := a.call(t, "/api/operator-token", "{}", nil); got != http.StatusUnauthorized {
		t.Fatalf("sign-in without the console's cookie: %d %s; want 401", got, body)
	}
	got, body := a.call(t, "/api/operator-token", "{}", map[string]string{"Cookie": "fin_console=" + a.token})
	var out struct{ Token string }
	if got != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil || out.Token == "" {
		t.Fatalf("sign-in: %d %s; want 200 and a token", got, body)
	}
	v, err := api.NewVerifier(t.Context(), a.auth)
	if err != nil {
		t.Fatal(err)
	}
	subject, scopes, err := v.Verify("Bearer " + out.Token)
	if err != nil || subject != ConsoleOperator || !slices.Equal(scopes, []string{api.ScopeOperator}) {
		t.Fatalf("the token: %q %v %v; want %s with the operator scope alone", subject, scopes, err, ConsoleOperator)
	}
	claims := map[string]any{}
	part := strings.Split(out.Token, ".")[1]
	raw, _ := base64.RawURLEncoding.DecodeString(part)
	json.Unmarshal(raw, &claims)
	exp, iat := claims["exp"].(float64), claims["iat"].(float64)
	if life := time.Duration(exp-iat) * time.Second; life <= 0 || life > operatorTokenTTL {
		t.Errorf("the token lives %v; want at most %v", life, operatorTokenTTL)
	}
	if got, body := a.call(t, "/api/actions/build", "{}", map[string]string{"Authorization": "Bearer " + out.Token}); got >= 300 {
		t.Fatalf("build with the signed-in token: %d %s", got, body)
	}
	if _, list := a.call(t, "/api/actions", "", map[string]string{"Cookie": "fin_console=" + a.token}); !strings.Contains(list, `"subject":"`+ConsoleOperator+`"`) {
		t.Errorf("the build was not recorded under %s: %s", ConsoleOperator, list)
	}

	a.apiAuth = api.AuthConfig{JWKSURL: "https://idp.example/.well-known/jwks.json", Issuer: "https://idp.example"}
	extra, err := a.actionHandlers(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := extra["POST /api/operator-token"]; ok {
		t.Error("with an IdP of its own the stack still signs operator tokens")
	}
}
