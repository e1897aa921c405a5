package capture

import (
	"testing"
	"time"
)

// The transaction metadata of one transaction, record by record, as Debezium 3.6.1 writes it
// (the contract test compares it with Debezium itself; this pins the shape without Kafka).
func TestTransactionMetadataRecords(t *testing.T) {
	commit := time.UnixMilli(1796503388075)
	var m txMeta
	m.beginTx(1799201, 1000, commit)
	begin := m.begin
	m.at(begin)
	steps := []struct{ name, got, want string }{
		{"BEGIN", string(m.boundary("fin.transaction_metadata", false).Value),
			`{"status":"BEGIN","id":"1799201:1000","event_count":null,"data_collections":null,"ts_ms":1796503388075}`},
		{"first event", string(m.count(nil, "public.accounts", 1010)),
			`{"id":"1799201:1010","total_order":1,"data_collection_order":1}`},
		{"second table", string(m.count(nil, "public.transactions", 1020)),
			`{"id":"1799201:1020","total_order":2,"data_collection_order":1}`},
		{"first table again", string(m.count(nil, "public.accounts", 1030)),
			`{"id":"1799201:1030","total_order":3,"data_collection_order":2}`},
	}
	m.at(1100)
	end := m.boundary("fin.transaction_metadata", true)
	steps = append(steps,
		struct{ name, got, want string }{"END", string(end.Value),
			`{"status":"END","id":"1799201:1100","event_count":3,"data_collections":[{"data_collection":"public.accounts","event_count":2},{"data_collection":"public.transactions","event_count":1}],"ts_ms":1796503388075}`},
		struct{ name, got, want string }{"END key", string(end.Key), `{"id":"1799201:1100"}`})
	for _, s := range steps {
		if s.got != s.want {
			t.Errorf("%s:\n got  %s\n want %s", s.name, s.got, s.want)
		}
	}
	if end.Topic != "fin.transaction_metadata" {
		t.Errorf("END topic %s", end.Topic)
	}

	// The next transaction starts from nothing.
	m.beginTx(1799202, 2000, commit)
	if got := string(m.count(nil, "public.customers", 2010)); got != `{"id":"1799202:2010","total_order":1,"data_collection_order":1}` {
		t.Errorf("next transaction's first block: %s", got)
	}
}
