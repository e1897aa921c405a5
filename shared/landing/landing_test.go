package landing_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/minio/minio-go/v7"
	"github.com/parquet-go/parquet-go"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
	"github.com/fin-orchestrator/fin-orchestrator/shared/landing"
	"github.com/fin-orchestrator/fin-orchestrator/shared/objectstore"
	"github.com/fin-orchestrator/fin-orchestrator/shared/s3local"
)

const bucket = "lake"

// commit is the commit time of the test events: 2026-11-25T23:59:59.123456Z.
var commit = time.Date(2026, 11, 25, 23, 59, 59, 123456000, time.UTC)

// lake is a local S3 server on an ephemeral port with the objects it was told about.
type lake struct {
	client *minio.Client
	mu     sync.Mutex
	keys   []string
}

func newLake(t *testing.T) *lake {
	t.Helper()
	l := &lake{}
	srv, err := s3local.Start(t.Context(), "127.0.0.1:0", filepath.Join(t.TempDir(), "s3"),
		func(ev events.S3Event) {
			l.mu.Lock()
			defer l.mu.Unlock()
			for _, r := range ev.Records {
				l.keys = append(l.keys, r.S3.Object.URLDecodedKey)
			}
		}, s3local.WithBuckets(bucket), s3local.WithCredentials(s3local.Credentials{AccessKeyID: "test", SecretAccessKey: "secret"}))
	if err != nil {
		t.Fatalf("start local S3: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	l.client, err = objectstore.Open(objectstore.Config{Endpoint: srv.URL, AccessKey: "test", SecretKey: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *lake) get(t *testing.T, key string) []byte {
	t.Helper()
	obj, err := l.client.GetObject(t.Context(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("read %s: %v (was it written? objects: %v)", key, err, l.list(t))
	}
	return b
}

func (l *lake) list(t *testing.T) []string {
	t.Helper()
	var keys []string
	for o := range l.client.ListObjects(t.Context(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("list: %v", o.Err)
		}
		keys = append(keys, o.Key)
	}
	slices.Sort(keys)
	return keys
}

// change is one Debezium change event (schemas disabled) as the connector writes it.
func change(op, table string, lsn int64, before, after string) string {
	orNull := func(s string) string {
		if s == "" {
			return "null"
		}
		return s
	}
	return fmt.Sprintf(`{"before":%s,"after":%s,"source":{"version":"3.6.1.Final","connector":"postgresql",`+
		`"name":"fin","ts_ms":%d,"snapshot":"false","db":"fin","sequence":"[null,\"%d\"]","ts_us":%d,`+
		`"ts_ns":%d,"schema":"public","table":"%s","txId":%d,"lsn":%d,"xmin":null},"transaction":null,`+
		`"op":"%s","ts_ms":%d,"ts_us":%d,"ts_ns":%d}`,
		orNull(before), orNull(after), commit.UnixMilli(), lsn, commit.UnixMicro(), commit.UnixNano(),
		table, 700+lsn/100, lsn, op, commit.UnixMilli()+5, commit.UnixMicro()+5000, commit.UnixNano()+5000000)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// record is a Kafka record as the event source delivers it; value "" is a tombstone.
func record(topic string, partition, offset int64, key, value string) events.KafkaRecord {
	r := events.KafkaRecord{
		Topic: topic, Partition: partition, Offset: offset,
		Timestamp:     events.MilliSecondsEpochTime{Time: commit.Truncate(time.Millisecond)},
		TimestampType: "CREATE_TIME", Key: b64(key),
		Headers: []map[string]events.JSONNumberBytes{},
	}
	if value != "" {
		r.Value = b64(value)
	}
	return r
}

func batch(recs ...events.KafkaRecord) events.KafkaEvent {
	ev := events.KafkaEvent{EventSource: "aws:kafka", Records: map[string][]events.KafkaRecord{}}
	for _, r := range recs {
		k := fmt.Sprintf("%s-%d", r.Topic, r.Partition)
		ev.Records[k] = append(ev.Records[k], r)
	}
	return ev
}

const accounts = "fin.public.accounts"

// accountBatch holds, on partition 0, an insert, an update of the balance, a delete and its
// tombstone; on partition 1, one insert.
func accountBatch() events.KafkaEvent {
	a1 := `{"id":"a1","balance":"12345.67","currency":"EUR"}`
	a1b := `{"id":"a1","balance":"0.10","currency":"EUR"}`
	a2 := `{"id":"a2","balance":"99999999999999.99","currency":"USD"}`
	return batch(
		record(accounts, 0, 10, `{"id":"a1"}`, change("c", "accounts", 1000, "", a1)),
		record(accounts, 0, 11, `{"id":"a1"}`, change("u", "accounts", 1100, a1, a1b)),
		record(accounts, 0, 12, `{"id":"a1"}`, change("d", "accounts", 1200, a1b, "")),
		record(accounts, 0, 13, `{"id":"a1"}`, ""),
		record(accounts, 1, 7, `{"id":"a2"}`, change("r", "accounts", 900, "", a2)),
	)
}

func readRows(t *testing.T, body []byte) []bronze.Record {
	t.Helper()
	rows, err := parquet.Read[bronze.Record](bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatalf("read parquet: %v", err)
	}
	return rows
}

func newHandler(t *testing.T, s3 landing.ObjectPutter) *landing.Handler {
	t.Helper()
	h, err := landing.NewHandler(landing.Config{Bucket: bucket}, s3)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHandleLandsOneObjectPerPartition(t *testing.T) {
	l := newLake(t)
	h := newHandler(t, l.client)
	resp, err := h.Handle(t.Context(), accountBatch())
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle = %+v, %v; want no failures", resp, err)
	}
	p0 := "bronze/accounts/dt=2026-11-25/fin.public.accounts-0-10-13-e3b0c442.parquet"
	p1 := "bronze/accounts/dt=2026-11-25/fin.public.accounts-1-7-7-e3b0c442.parquet"
	if got, want := l.list(t), []string{p0, p1}; !slices.Equal(got, want) {
		t.Fatalf("objects = %v, want %v", got, want)
	}

	rows := readRows(t, l.get(t, p0))
	if len(rows) != 3 {
		t.Fatalf("partition 0 object has %d rows, want 3 (c, u, d; the tombstone skipped)", len(rows))
	}
	for i, want := range []struct {
		op     string
		offset int64
		lsn    int64
		before bool
		after  string
	}{
		{"c", 10, 1000, false, `{"id":"a1","balance":"12345.67","currency":"EUR"}`},
		{"u", 11, 1100, true, `{"id":"a1","balance":"0.10","currency":"EUR"}`},
		{"d", 12, 1200, true, ""},
	} {
		r := rows[i]
		if r.Op != want.op || r.Offset != want.offset || r.LSN == nil || *r.LSN != want.lsn {
			t.Errorf("row %d: op %s offset %d lsn %v; want %s %d %d", i, r.Op, r.Offset, r.LSN, want.op, want.offset, want.lsn)
		}
		if (r.Before != nil) != want.before {
			t.Errorf("row %d (%s): before image present = %v, want %v", i, r.Op, r.Before != nil, want.before)
		}
		if got := deref(r.After); got != want.after {
			t.Errorf("row %d (%s): after = %s, want %s (the image exactly as Debezium wrote it)", i, r.Op, got, want.after)
		}
		if r.Topic != accounts || r.Partition != 0 || r.Key != `{"id":"a1"}` || r.CommitTsUs != commit.UnixMicro() ||
			r.EventTsMs != commit.UnixMilli()+5 || r.Snapshot != "false" || r.SourceSchema != "public" ||
			r.SourceTable != "accounts" || r.TxID == nil || *r.TxID != 700+want.lsn/100 {
			t.Errorf("row %d metadata = %+v", i, r)
		}
	}
	if rows := readRows(t, l.get(t, p1)); len(rows) != 1 || deref(rows[0].After) != `{"id":"a2","balance":"99999999999999.99","currency":"USD"}` {
		t.Errorf("partition 1 rows = %+v; want the snapshot row with its balance to the cent", rows)
	}
	if got, want := h.Stats(), (landing.Stats{Records: 4, Tombstones: 1, Objects: 2}); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
	waitFor(t, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return len(l.keys) == 2 },
		"the local S3 to announce both objects")
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPoisonRecordGoesToDLQAndBatchGoesOn(t *testing.T) {
	good := change("c", "accounts", 1000, "", `{"id":"a1","balance":"1.00"}`)
	for _, tc := range []struct {
		name   string
		rec    events.KafkaRecord
		reason string
	}{
		{"value not base64", withRaw(record(accounts, 0, 11, `{"id":"x"}`, "x"), "", "%%%"), "value is not base64"},
		{"key not base64", withRaw(record(accounts, 0, 11, "", "x"), "***", b64(good)), "key is not base64"},
		{"not JSON", record(accounts, 0, 11, `{"id":"x"}`, "garbage{"), "not a Debezium JSON envelope"},
		{"schemas enabled", record(accounts, 0, 11, `{"id":"x"}`, `{"schema":{},"payload":`+good+`}`), "schemas.enable=false"},
		{"unknown op", record(accounts, 0, 11, `{"id":"x"}`, strings.Replace(good, `"op":"c"`, `"op":"x"`, 1)), `unknown op "x"`},
		{"delete without before", record(accounts, 0, 11, `{"id":"x"}`, change("d", "accounts", 1, "", "")), "op d without a before image"},
		{"no source", record(accounts, 0, 11, `{"id":"x"}`, `{"op":"c","after":{},"ts_ms":1}`), "no source block"},
		{"money as a number is still not parsed", record(accounts, 0, 11, `{"id":"x"}`, `{"op":"c","after":[1.5],"source":{"table":"accounts","ts_us":1},"ts_ms":1}`), "after is not a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLake(t)
			h := newHandler(t, l.client)
			ev := batch(record(accounts, 0, 10, `{"id":"a1"}`, good), tc.rec,
				record(accounts, 0, 12, `{"id":"a1"}`, good))
			resp, err := h.Handle(t.Context(), ev)
			if err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("Handle = %+v, %v; a poison record must not fail the batch", resp, err)
			}
			var d struct {
				Topic       string `json:"topic"`
				Partition   int32  `json:"partition"`
				Offset      int64  `json:"offset"`
				Reason      string `json:"reason"`
				KeyBase64   string `json:"key_base64"`
				ValueBase64 string `json:"value_base64"`
			}
			if err := json.Unmarshal(l.get(t, "dlq/fin.public.accounts/e3b0c442-0-11.json"), &d); err != nil {
				t.Fatalf("DLQ object: %v", err)
			}
			if d.Topic != accounts || d.Partition != 0 || d.Offset != 11 || !strings.Contains(d.Reason, tc.reason) ||
				d.KeyBase64 != tc.rec.Key || d.ValueBase64 != tc.rec.Value {
				t.Errorf("DLQ entry = %+v; want position 0@11, the raw key/value, reason containing %q", d, tc.reason)
			}
			rows := readRows(t, l.get(t, "bronze/accounts/dt=2026-11-25/fin.public.accounts-0-10-12-e3b0c442.parquet"))
			if len(rows) != 2 || rows[0].Offset != 10 || rows[1].Offset != 12 {
				t.Errorf("landed rows %+v; want offsets 10 and 12 around the poison record", rows)
			}
			if s := h.Stats(); s.Poison != 1 || s.Records != 2 {
				t.Errorf("Stats = %+v; want 1 poison, 2 records", s)
			}
		})
	}
}

func withRaw(r events.KafkaRecord, key, value string) events.KafkaRecord {
	r.Key, r.Value = key, value
	return r
}

// TestRedeliveredBatchIsByteIdentical lands the same batch twice, the second time as a new
// handler would get it after a retry (through JSON, partitions and records in another order):
// the objects must be rewritten with the same bytes.
func TestRedeliveredBatchIsByteIdentical(t *testing.T) {
	l := newLake(t)
	ev := accountBatch()
	ev.Records[accounts+"-0"] = append(ev.Records[accounts+"-0"],
		record(accounts, 0, 14, `{"id":"zz"}`, "not json"))
	if _, err := newHandler(t, l.client).Handle(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	first := map[string][]byte{}
	for _, k := range l.list(t) {
		first[k] = l.get(t, k)
	}
	if len(first) != 3 {
		t.Fatalf("first delivery wrote %v; want two bronze objects and one DLQ object", l.list(t))
	}

	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var again events.KafkaEvent
	if err := json.Unmarshal(raw, &again); err != nil {
		t.Fatal(err)
	}
	slices.Reverse(again.Records[accounts+"-0"])
	time.Sleep(1100 * time.Millisecond) // a wall-clock time written into an object would now differ
	if _, err := newHandler(t, l.client).Handle(t.Context(), again); err != nil {
		t.Fatal(err)
	}
	for _, k := range l.list(t) {
		if !bytes.Equal(first[k], l.get(t, k)) {
			t.Errorf("%s changed on redelivery", k)
		}
	}
	if len(l.list(t)) != len(first) {
		t.Errorf("redelivery wrote new objects: %v", l.list(t))
	}
}

// failing fails the puts whose key contains one of its substrings.
type failing struct {
	landing.ObjectPutter
	keys []string
}

func (f failing) PutObject(ctx context.Context, b, key string, r io.Reader, size int64,
	opts minio.PutObjectOptions) (minio.UploadInfo, error) {
	for _, k := range f.keys {
		if strings.Contains(key, k) {
			return minio.UploadInfo{}, errors.New("503 SlowDown (injected)")
		}
	}
	return f.ObjectPutter.PutObject(ctx, b, key, r, size, opts)
}

func TestS3FailureReportsEarliestOffsetOfEachPartition(t *testing.T) {
	transfers := "fin.public.transactions"
	ev := accountBatch()
	for p, recs := range batch(
		record(transfers, 0, 40, `{"id":"t1"}`, change("c", "transactions", 2000, "", `{"id":"t1","amount":"5.00"}`)),
		record(transfers, 0, 41, `{"id":"t2"}`, "poison"),
		record(transfers, 0, 42, `{"id":"t3"}`, change("c", "transactions", 2100, "", `{"id":"t3","amount":"6.00"}`)),
	).Records {
		ev.Records[p] = recs
	}
	for _, tc := range []struct {
		name     string
		failKeys []string
		want     []landing.ItemIdentifier
	}{
		{"all landed", nil, []landing.ItemIdentifier{}},
		{"one bronze object", []string{"accounts-1-"}, []landing.ItemIdentifier{{Partition: accounts + "-1", Offset: 7}}},
		{"a DLQ object", []string{"dlq/"}, []landing.ItemIdentifier{{Partition: transfers + "-0", Offset: 40}}},
		{"everything", []string{"/"}, []landing.ItemIdentifier{
			{Partition: accounts + "-0", Offset: 10},
			{Partition: accounts + "-1", Offset: 7},
			{Partition: transfers + "-0", Offset: 40},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLake(t)
			s3 := failing{l.client, tc.failKeys}
			resp, err := newHandler(t, s3).Handle(t.Context(), ev)
			if err != nil {
				t.Fatal(err)
			}
			// For a mapping without ReportBatchItemFailures: an error exactly when something failed.
			strict, err := landing.NewHandler(landing.Config{Bucket: bucket, FailBatch: true}, s3)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := strict.Handle(t.Context(), ev); (err != nil) != (len(tc.want) > 0) {
				t.Errorf("with FailBatch: error %v, want one only when a partition failed", err)
			}
			got := []landing.ItemIdentifier{}
			for _, f := range resp.BatchItemFailures {
				got = append(got, f.ItemIdentifier)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("batchItemFailures = %+v, want %+v", got, tc.want)
			}
			// Whatever was acknowledged is in S3.
			landed := strings.Join(l.list(t), " ")
			for _, p := range []string{accounts + "-0", accounts + "-1", transfers + "-0"} {
				acked := !slices.ContainsFunc(got, func(i landing.ItemIdentifier) bool { return i.Partition == p })
				if acked && !strings.Contains(landed, "/"+p+"-") {
					t.Errorf("partition %s acknowledged but has no bronze object in %s", p, landed)
				}
			}
		})
	}
}

func TestResponseJSONShape(t *testing.T) {
	resp := landing.Response{BatchItemFailures: []landing.BatchItemFailure{
		{ItemIdentifier: landing.ItemIdentifier{Partition: "fin.public.accounts-3", Offset: 42}},
	}}
	got, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"batchItemFailures":[{"itemIdentifier":{"partition":"fin.public.accounts-3","offset":42}}]}`
	if string(got) != want {
		t.Errorf("response JSON = %s\nwant            %s (the shape the Kafka event source reads)", got, want)
	}
}

func TestHandleWritesEMF(t *testing.T) {
	l := newLake(t)
	var out bytes.Buffer
	h, err := landing.NewHandler(landing.Config{Bucket: bucket, EMF: &out}, l.client)
	if err != nil {
		t.Fatal(err)
	}
	ev := accountBatch()
	for p, recs := range ev.Records {
		ev.Records[p] = append(recs, withRaw(recs[0], "k", "not json"))
		ev.Records[p][len(recs)].Offset = recs[len(recs)-1].Offset + 1
		break
	}
	if _, err := h.Handle(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	var line struct {
		Function                  string
		RecordsLanded, DLQRecords float64
	}
	if err := json.Unmarshal(out.Bytes(), &line); err != nil || line.Function != "cdc-landing" || line.RecordsLanded < 1 || line.DLQRecords != 1 {
		t.Fatalf("EMF line %q (%v): want the records landed and 1 to the DLQ", out.String(), err)
	}
}

// A partition that fails is redelivered whatever the cause (as AWS does, nothing is dropped),
// and the log says whether redelivery can mend it: a slow S3 may pass, a malformed event not.
func TestPartitionFailureSaysWhetherItWillPass(t *testing.T) {
	misfiled := accountBatch()
	p1 := accounts + "-1"
	misfiled.Records[p1] = append(misfiled.Records[p1], record(accounts, 2, 8, `{"id":"a3"}`,
		change("c", "accounts", 950, "", `{"id":"a3","balance":"1.00","currency":"EUR"}`)))
	for _, tc := range []struct {
		name      string
		ev        events.KafkaEvent
		failKeys  []string
		permanent string
	}{
		{"S3 refuses the object", accountBatch(), []string{"accounts-1-"}, "permanent=false"},
		{"a record filed under another partition", misfiled, nil, "permanent=true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			h, err := landing.NewHandler(landing.Config{Bucket: bucket,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))}, failing{newLake(t).client, tc.failKeys})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := h.Handle(t.Context(), tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier.Partition != p1 {
				t.Fatalf("batchItemFailures = %+v, want partition %s redelivered", resp.BatchItemFailures, p1)
			}
			if !strings.Contains(logs.String(), "partition not landed") || !strings.Contains(logs.String(), tc.permanent) {
				t.Errorf("log does not say %s:\n%s", tc.permanent, logs.String())
			}
		})
	}
}
