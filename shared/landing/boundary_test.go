package landing_test

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fin-orchestrator/fin-orchestrator/shared/landing"
)

const txTopic = "fin.transaction_metadata"

// A transaction's BEGIN and END land as rows of bronze/transaction_metadata, its id taken apart
// and the record kept whole; a change event carrying its transaction block lands as before.
// Records that are not transaction metadata go to the DLQ with the reason, the rest lands.
func TestTransactionBoundariesLand(t *testing.T) {
	ms := commit.UnixMilli()
	begin := `{"status":"BEGIN","id":"1799201:43582058808","event_count":null,"data_collections":null,"ts_ms":` + itoa(ms) + `}`
	end := `{"status":"END","id":"1799201:43582060024","event_count":3,"data_collections":[{"data_collection":"public.accounts","event_count":2},{"data_collection":"public.transactions","event_count":1}],"ts_ms":` + itoa(ms) + `}`
	bad := []struct{ name, value, reason string }{
		{"counts disagree", strings.Replace(end, `"event_count":3`, `"event_count":4`, 1), "counts 4 events, its data collections 3"},
		{"END without counts", strings.Replace(end, `"event_count":3`, `"event_count":null`, 1), "has no event_count"},
		{"id without lsn", strings.Replace(begin, `1799201:43582058808`, `1799201`, 1), "is not <txId>:<lsn>"},
		{"unknown status", strings.Replace(begin, `BEGIN`, `COMMIT`, 1), `status "COMMIT"`},
		{"a change event", change("c", "accounts", 1000, "", `{"id":"a1"}`), "not a Debezium transaction metadata record"},
		{"no commit time", strings.Replace(begin, `,"ts_ms":`+itoa(ms), ``, 1), "has no ts_ms"},
	}
	ev := batch(record(txTopic, 0, 0, `{"id":"1799201:43582058808"}`, begin),
		record(txTopic, 0, 1, `{"id":"1799201:43582060024"}`, end))
	for i, b := range bad {
		r := record(txTopic, 0, int64(2+i), `{"id":"x"}`, b.value)
		ev.Records[txTopic+"-0"] = append(ev.Records[txTopic+"-0"], r)
	}
	withBlock := strings.Replace(change("u", "accounts", 1100, `{"id":"a1"}`, `{"id":"a1"}`), `"transaction":null`,
		`"transaction":{"id":"801:1100","total_order":1,"data_collection_order":1}`, 1)
	ev.Records[accounts+"-0"] = append(ev.Records[accounts+"-0"], record(accounts, 0, 5, `{"id":"a1"}`, withBlock))

	l := newLake(t)
	h := newHandler(t, l.client)
	if resp, err := h.Handle(t.Context(), ev); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle = %+v, %v; want no failures", resp, err)
	}
	key := "bronze/transaction_metadata/dt=2026-11-25/fin.transaction_metadata-0-0-7-e3b0c442.parquet"
	keys := l.list(t)
	if !slices.Contains(keys, key) {
		t.Fatalf("objects %v lack %s", keys, key)
	}
	rows := readRows(t, l.get(t, key))
	if len(rows) != 2 {
		t.Fatalf("%d rows, want the BEGIN and the END", len(rows))
	}
	for i, want := range []struct {
		op         string
		tx, lsn    int64
		value, key string
	}{
		{"BEGIN", 1799201, 43582058808, begin, `{"id":"1799201:43582058808"}`},
		{"END", 1799201, 43582060024, end, `{"id":"1799201:43582060024"}`},
	} {
		r := rows[i]
		if r.Op != want.op || r.TxID == nil || *r.TxID != want.tx || r.LSN == nil || *r.LSN != want.lsn ||
			r.CommitTsUs != ms*1000 || r.Offset != int64(i) || r.Key != want.key || deref(r.After) != want.value || r.Before != nil {
			t.Errorf("row %d = %+v, want %s of %d at %d", i, r, want.op, want.tx, want.lsn)
		}
	}
	var reasons []string
	for _, k := range keys {
		if strings.HasPrefix(k, "dlq/"+txTopic+"/") {
			var e landing.DLQEntry
			decodeJSON(t, l.get(t, k), &e)
			reasons = append(reasons, e.Reason)
		}
	}
	if len(reasons) != len(bad) {
		t.Fatalf("DLQ holds %d records, want %d: %v", len(reasons), len(bad), reasons)
	}
	for i, b := range bad {
		if !strings.Contains(reasons[i], b.reason) {
			t.Errorf("%s: DLQ reason %q, want it to say %q", b.name, reasons[i], b.reason)
		}
	}
	acc := readRows(t, l.get(t, "bronze/accounts/dt=2026-11-25/fin.public.accounts-0-5-5-e3b0c442.parquet"))
	if len(acc) != 1 || acc[0].Op != "u" || acc[0].LSN == nil || *acc[0].LSN != 1100 {
		t.Errorf("the event with a transaction block landed as %+v", acc)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func decodeJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}
