package loader_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze/bronzetest"
	"github.com/fin-orchestrator/fin-orchestrator/shared/loader"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

const bucket = "fin-lake"

// stack is a DuckDB warehouse, a bucket on disk and a loader over both.
type stack struct {
	root string
	wh   *duckdb.Warehouse
	h    *loader.Handler
}

func newStack(t *testing.T) *stack {
	t.Helper()
	dir := t.TempDir()
	wh, err := duckdb.Open(context.Background(), filepath.Join(dir, "warehouse.duckdb"), nil)
	if err != nil {
		t.Fatalf("open DuckDB warehouse: %v", err)
	}
	t.Cleanup(func() { wh.Close() })
	root := filepath.Join(dir, "s3")
	return &stack{root: root, wh: wh, h: loader.NewHandler(wh, loader.DirObjects(root))}
}

// put writes n records of table from offset first and returns the object's key and records.
func (s *stack) put(t *testing.T, table string, first int64, n int, extra map[string]string) (string, []bronze.Record) {
	t.Helper()
	recs := bronzetest.Records(table, first, n, extra)
	key, err := bronzetest.Put(s.root, bucket, table, recs)
	if err != nil {
		t.Fatalf("write bronze object: %v", err)
	}
	return key, recs
}

// created is the event S3 sends for a new object: the key URL-encoded, no ETag (so the loader
// reads it from the object).
func created(keys ...string) events.S3Event {
	var ev events.S3Event
	for _, k := range keys {
		var rec events.S3EventRecord
		rec.EventName = "ObjectCreated:Put"
		rec.S3.Bucket.Name = bucket
		rec.S3.Object.Key = url.QueryEscape(k)
		ev.Records = append(ev.Records, rec)
	}
	return ev
}

// query runs q and returns the CSV lines after the header.
func (s *stack) query(t *testing.T, q string) []string {
	t.Helper()
	var out bytes.Buffer
	if err := s.wh.Query(context.Background(), q, &out); err != nil {
		t.Fatalf("query %q: %v", q, err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	return lines[1:]
}

func (s *stack) count(t *testing.T, table string) string {
	t.Helper()
	return s.query(t, "SELECT count(*) FROM raw."+table)[0]
}

func TestLoadRowsEqualBronzeAndRedeliveryIsANoOp(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	k1, _ := s.put(t, "accounts", 0, 250, nil)
	k2, _ := s.put(t, "accounts", 250, 50, nil)
	if err := s.h.Handle(ctx, created(k1, k2)); err != nil {
		t.Fatalf("first delivery: %v", err)
	}
	if got := s.count(t, "accounts"); got != "300" {
		t.Fatalf("raw.accounts has %s rows after loading 250+50 bronze rows", got)
	}
	for i := 0; i < 3; i++ {
		if err := s.h.Handle(ctx, created(k2, k1)); err != nil {
			t.Fatalf("redelivery %d: %v", i, err)
		}
	}
	if got := s.count(t, "accounts"); got != "300" {
		t.Fatalf("raw.accounts has %s rows after redeliveries, want still 300", got)
	}
	m := s.h.Metrics()
	if m.ObjectsLoaded != 2 || m.RowsLoaded != 300 || m.Duplicates != 6 || m.FailureCount() != 0 {
		t.Fatalf("metrics %+v, want 2 objects / 300 rows loaded, 6 duplicates, no failures", m)
	}
	ledger := s.query(t, "SELECT object_key, source_table, row_count, length(etag) FROM raw._load_ledger ORDER BY object_key")
	want := []string{k1 + ",accounts,250,32", k2 + ",accounts,50,32"}
	if strings.Join(ledger, "\n") != strings.Join(want, "\n") {
		t.Fatalf("load ledger:\n%s\nwant:\n%s", strings.Join(ledger, "\n"), strings.Join(want, "\n"))
	}
	// Every envelope column arrives, the row image stays JSON with money as a decimal string.
	row := s.query(t, `SELECT topic, "partition", "offset", key, op, lsn, tx_id, snapshot, source_table,
		after->>'amount', before IS NULL, _object_key FROM raw.accounts WHERE "offset" = 7`)
	if want := fmt.Sprintf(`fin.public.accounts,0,7,"{""id"":7}",c,1000448,707,false,accounts,21.07,true,%s`, k1); row[0] != want {
		t.Fatalf("row of offset 7:\n%s\nwant:\n%s", row[0], want)
	}
}

func TestConcurrentDeliveriesLoadOnce(t *testing.T) {
	s := newStack(t)
	key, _ := s.put(t, "transactions", 0, 500, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.h.Handle(context.Background(), created(key))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent delivery: %v", err)
		}
	}
	if got := s.count(t, "transactions"); got != "500" {
		t.Fatalf("raw.transactions has %s rows after 8 concurrent deliveries of one 500-row object", got)
	}
	if m := s.h.Metrics(); m.ObjectsLoaded != 1 || m.Duplicates != 7 {
		t.Fatalf("metrics %+v, want 1 load and 7 duplicates", m)
	}
}

func TestBadInputsFailAloneAndTheNextObjectLoads(t *testing.T) {
	s := newStack(t)
	good, _ := s.put(t, "customers", 0, 20, nil)
	corrupt := bronzetest.KeyAt("customers", 100, 199)
	b, err := bronzetest.Encode(bronzetest.Records("customers", 100, 100, nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := bronzetest.PutBytes(s.root, bucket, corrupt, b[:len(b)/2]); err != nil {
		t.Fatal(err)
	}
	badJSON := bronzetest.Records("customers", 200, 10, nil)
	broken := `{"id": 205, "amount": `
	badJSON[5].After = &broken
	badImage, err := bronzetest.Put(s.root, bucket, "customers", badJSON)
	if err != nil {
		t.Fatal(err)
	}
	unknown, _ := s.put(t, "payroll", 0, 5, nil)
	missing := bronzetest.KeyAt("customers", 300, 309)
	dlq := bronze.DLQKey("test", "fin.public.customers", 0, 17)

	ev := created(corrupt, badImage, unknown, missing, dlq, "bronze/customers/stray.txt", good)
	removed := created(good)
	removed.Records[0].EventName = "ObjectRemoved:Delete"
	ev.Records = append(ev.Records, removed.Records...)

	err = s.h.Handle(context.Background(), ev)
	if err == nil {
		t.Fatal("an event with corrupt, unknown and missing objects returned no error")
	}
	for _, want := range []string{
		corrupt + ": not a readable bronze object",
		badImage + ": not a readable bronze object",
		unknown + `: unknown table "payroll"`,
		missing + ": ",
		"object not found",
		`not a bronze object key "bronze/customers/stray.txt": layout: `,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if got := s.count(t, "customers"); got != "20" {
		t.Fatalf("raw.customers has %s rows, want exactly the 20 of the good object (nothing of the bad ones)", got)
	}
	if got := s.query(t, "SELECT count(*) FROM raw._load_ledger")[0]; got != "1" {
		t.Fatalf("ledger has %s rows, want only the good object", got)
	}
	m := s.h.Metrics()
	wantFailures := map[string]int64{loader.ReasonBadObject: 2, loader.ReasonUnknownTable: 1, loader.ReasonMissingObject: 1, loader.ReasonBadKey: 1}
	for r, n := range wantFailures {
		if m.Failures[r] != n {
			t.Errorf("failures[%s] = %d, want %d (all: %v)", r, m.Failures[r], n, m.Failures)
		}
	}
	if m.ObjectsLoaded != 1 || m.DeadLetters != 1 || m.Ignored != 1 {
		t.Errorf("metrics %+v, want 1 loaded, 1 dead letter, 1 ignored delete", m)
	}
	// Once the landing rewrites the corrupt object, its redelivered event loads it.
	if _, err := bronzetest.Put(s.root, bucket, "customers", bronzetest.Records("customers", 100, 100, nil)); err != nil {
		t.Fatal(err)
	}
	if err := s.h.Handle(context.Background(), created(corrupt)); err != nil {
		t.Fatalf("rewritten object: %v", err)
	}
	if got := s.count(t, "customers"); got != "120" {
		t.Fatalf("raw.customers has %s rows after the rewritten object loaded, want 120", got)
	}
}

func TestRewrittenObjectReplacesItsRows(t *testing.T) {
	s := newStack(t)
	key, _ := s.put(t, "accounts", 0, 10, nil)
	if err := s.h.Handle(context.Background(), created(key)); err != nil {
		t.Fatal(err)
	}
	// The landing rewrote the object under the same key with other bytes (a new ETag).
	if _, err := bronzetest.Put(s.root, bucket, "accounts", bronzetest.Records("accounts", 0, 10, map[string]string{"v": "2"})); err != nil {
		t.Fatal(err)
	}
	if err := s.h.Handle(context.Background(), created(key)); err != nil {
		t.Fatal(err)
	}
	if got := s.query(t, "SELECT count(*), count(after->>'v') FROM raw.accounts")[0]; got != "10,10" {
		t.Fatalf("after a rewrite raw.accounts has (rows, rows of the new version) = %s, want 10,10", got)
	}
	if m := s.h.Metrics(); m.ObjectsLoaded != 2 || m.Replaced != 1 {
		t.Fatalf("metrics %+v, want 2 loads, 1 replacement", m)
	}
}

func TestNewSourceColumnReachesRaw(t *testing.T) {
	s := newStack(t)
	old, _ := s.put(t, "customers", 0, 3, nil)
	// ALTER TABLE customers ADD COLUMN nickname text: later row images carry it.
	evolved, _ := s.put(t, "customers", 3, 2, map[string]string{"nickname": "Bo"})
	if err := s.h.Handle(context.Background(), created(old, evolved)); err != nil {
		t.Fatal(err)
	}
	got := s.query(t, `SELECT "offset", coalesce(after->>'nickname', 'NULL') FROM raw.customers ORDER BY "offset"`)
	want := []string{"0,NULL", "1,NULL", "2,NULL", "3,Bo", "4,Bo"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("nickname per offset = %v, want %v", got, want)
	}
}

// Payloads as each S3 server sends them, decoded as the Lambda runtime decodes its event
// (encoding/json into events.S3Event) and then handled. The webhook forms of versitygw are
// s3local.WebhookHandler's to decode (TestWebhookForwardsObjectCreatedOnly).
func TestEventPayloadVariants(t *testing.T) {
	s := newStack(t)
	keyOf := func(first int64) string { k, _ := s.put(t, "accounts", first, 4, nil); return k }
	aws := `{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"eu-west-1",
		"eventTime":"2026-11-25T10:00:00.000Z","eventName":"ObjectCreated:Put",
		"userIdentity":{"principalId":"AWS:X"},"requestParameters":{"sourceIPAddress":"1.2.3.4"},
		"responseElements":{"x-amz-request-id":"R"},"s3":{"s3SchemaVersion":"1.0","configurationId":"c",
		"bucket":{"name":"%s","ownerIdentity":{"principalId":"X"},"arn":"arn:aws:s3:::%[1]s"},
		"object":{"key":"%s","size":1,"eTag":"","sequencer":"0A"}}}]}`
	minio := `{"EventName":"s3:ObjectCreated:Put","Key":"%s/x","Records":[{"eventVersion":"2.0",
		"eventSource":"minio:s3","awsRegion":"","eventTime":"2026-11-25T10:00:00.000Z",
		"eventName":"s3:ObjectCreated:Put","userIdentity":{"principalId":"minio"},
		"requestParameters":{"region":"","sourceIPAddress":"127.0.0.1","accessKey":"minio"},
		"responseElements":{"x-minio-origin-endpoint":"http://127.0.0.1:9000"},
		"s3":{"s3SchemaVersion":"1.0","configurationId":"Config","bucket":{"name":"%[1]s",
		"ownerIdentity":{"principalId":"minio"},"arn":"arn:aws:s3:::%[1]s"},
		"object":{"key":"%s","size":1,"eTag":"","contentType":"application/octet-stream",
		"userMetadata":{"content-type":"application/octet-stream"},"sequencer":"1"}},
		"source":{"host":"127.0.0.1","port":"","userAgent":"MinIO"}}]}`
	versity := `{"eventVersion":"2.2","eventSource":"aws:s3","awsRegion":"us-east-1",
		"eventTime":"2026-11-25T10:00:00Z","eventName":"s3:ObjectCreated:Put",
		"userIdentity":{"PrincipalId":"user"},"requestParameters":{"sourceIPAddress":"127.0.0.1"},
		"responseElements":{"x-amz-request-id":"","x-amz-id-2":""},"s3":{"s3SchemaVersion":"1.0",
		"configurationId":"webhook-global","bucket":{"name":"%s","ownerIdentity":{"principalId":"user"},
		"arn":"arn:aws:s3:::%[1]s/x"},"object":{"key":"%s","size":1,"eTag":null,"versionId":null,
		"sequencer":"1"}},"glacierEventData":{"restoreEventData":{}}}`
	for _, tc := range []struct {
		name, payload string
		first         int64
	}{
		{"aws", aws, 0},
		{"minio", minio, 10},
		{"versitygw", `{"Records":[` + versity + `]}`, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := keyOf(tc.first)
			var ev events.S3Event
			if err := json.Unmarshal(fmt.Appendf(nil, tc.payload, bucket, url.QueryEscape(key)), &ev); err != nil {
				t.Fatalf("decode %s payload: %v", tc.name, err)
			}
			if err := s.h.Handle(context.Background(), ev); err != nil {
				t.Fatalf("handle %s event: %v", tc.name, err)
			}
			if got := s.query(t, "SELECT count(*) FROM raw.accounts WHERE _object_key = '"+key+"'")[0]; got != "4" {
				t.Fatalf("%s event loaded %s rows of %s, want 4", tc.name, got, key)
			}
		})
	}
}

func TestEMFLine(t *testing.T) {
	var out bytes.Buffer
	dir := t.TempDir()
	wh, err := duckdb.Open(context.Background(), filepath.Join(dir, "w.duckdb"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	h := loader.NewHandler(wh, loader.DirObjects(dir), loader.WithEMF(&out))
	h.Handle(context.Background(), created(bronzetest.KeyAt("payroll", 0, 1)))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("EMF output has %d lines, want 2 (counts, one failure reason):\n%s", len(lines), out.String())
	}
	var failure map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &failure); err != nil {
		t.Fatal(err)
	}
	if failure["Reason"] != loader.ReasonUnknownTable || failure["ObjectsFailed"] != 1.0 || failure["_aws"] == nil {
		t.Fatalf("failure line %s, want Reason=unknown_table ObjectsFailed=1 with an _aws directive", lines[1])
	}
}

// Events lost (a webhook nobody received, a stack that was down) are made good by a catch-up
// over the bucket's listing.
func TestCatchUpLoadsWhatNoEventAnnounced(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	announced, _ := s.put(t, "accounts", 0, 10, nil)
	s.put(t, "accounts", 10, 10, nil)
	s.put(t, "customers", 0, 7, nil)
	if err := bronzetest.PutBytes(s.root, bucket, bronze.DLQKey("test", "fin.public.accounts", 0, 3), []byte(`{"reason":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.h.Handle(ctx, created(announced)); err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 2; round++ {
		if err := s.h.CatchUp(ctx, bucket, loader.DirObjects(s.root)); err != nil {
			t.Fatalf("catch-up %d: %v", round, err)
		}
		if got := s.count(t, "accounts") + "," + s.count(t, "customers"); got != "20,7" {
			t.Fatalf("after catch-up %d: accounts,customers rows = %s, want 20,7", round, got)
		}
	}
	if m := s.h.Metrics(); m.ObjectsLoaded != 3 || m.Duplicates != 4 || m.DeadLetters != 0 {
		t.Fatalf("metrics %+v: want 3 loads (1 by event, 2 by catch-up), 4 duplicates, the DLQ not even listed", m)
	}
}

// An object with no rows is no load: tried again, then a nothing_loaded failure, no ledger row
// (the Snowflake warehouse's rule, held locally too).
func TestEmptyObjectIsAFailureNotALedgerRow(t *testing.T) {
	s := newStack(t)
	s.h = loader.NewHandler(s.wh, loader.DirObjects(s.root), loader.WithRetry(2, time.Millisecond))
	empty, err := bronzetest.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	key := bronzetest.KeyAt("accounts", 0, 3)
	if err := bronzetest.PutBytes(s.root, bucket, key, empty); err != nil {
		t.Fatal(err)
	}
	err = s.h.Handle(context.Background(), created(key))
	if !errors.Is(err, warehouse.ErrNothingLoaded) || !strings.Contains(err.Error(), key) {
		t.Fatalf("loading an empty object: %v; want ErrNothingLoaded naming %s", err, key)
	}
	if m := s.h.Metrics(); m.Failures[loader.ReasonNothingLoaded] != 1 || m.ObjectsLoaded != 0 {
		t.Fatalf("metrics %+v, want one nothing_loaded failure", m)
	}
	if got := s.query(t, "SELECT count(*) FROM raw._load_ledger")[0]; got != "0" {
		t.Fatalf("the ledger has %s rows, want none", got)
	}
}
