package capture_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fin-orchestrator/fin-orchestrator/shared/capture"
	"github.com/fin-orchestrator/fin-orchestrator/shared/kafka"
	"github.com/fin-orchestrator/fin-orchestrator/shared/pgtest"
)

// harness is one test database, an embedded broker and a way to run the capture on them.
type harness struct {
	t     *testing.T
	db    *pgtest.DB
	seeds []string
	cfg   capture.Config
	// ended is what the capture start ran last returned, nil while it runs.
	ended func() *error
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	db := pgtest.New(t)
	watchDatabase(t, db)
	ctx := context.Background()
	seeds, stop, err := kafka.StartEmbedded(ctx, kafka.EmbeddedConfig{})
	if err != nil {
		t.Fatalf("embedded kafka: %v", err)
	}
	t.Cleanup(stop)
	slot := "cap_" + strings.TrimPrefix(db.Name, "fin_test_")
	// Slots are cluster-wide and block DROP DATABASE: drop ours before the database goes.
	t.Cleanup(func() { dropSlot(t, db, slot) })
	return &harness{t: t, db: db, seeds: seeds, cfg: capture.Config{DatabaseURL: db.URL, Slot: slot, HeartbeatInterval: time.Second}}
}

// dropSlot drops a replication slot, waiting for its last reader to let go of it.
func dropSlot(t *testing.T, db *pgtest.DB, slot string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	for ctx.Err() == nil {
		_, err = db.Pool.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", slot)
		if err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond) // still active for a moment after its reader stops
	}
	t.Errorf("drop replication slot %s: %v (drop it by hand: it holds WAL)", slot, err)
}

func (h *harness) exec(sql string, args ...any) {
	h.t.Helper()
	if _, err := h.db.Pool.Exec(context.Background(), sql, args...); err != nil {
		h.t.Fatalf("%s: %v", sql, err)
	}
}

// start runs the capture into producer (nil: a client of the embedded broker) until the
// returned stop is called; stop returns Run's error.
func (h *harness) start(producer capture.Producer) (stop func() error) {
	h.t.Helper()
	if producer == nil {
		cl, err := kafka.NewClient(h.seeds)
		if err != nil {
			h.t.Fatal(err)
		}
		h.t.Cleanup(cl.Close)
		producer = cl
	}
	cfg := h.cfg
	if cfg.Metrics == nil {
		cfg.Metrics = &capture.Metrics{}
	}
	watchCapture(h.t, cfg.Metrics)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var ended atomic.Pointer[error]
	h.ended = ended.Load
	go func() {
		err := capture.Run(ctx, cfg, producer)
		ended.Store(&err)
		done <- err
	}()
	var once atomic.Bool
	stop = func() error {
		if !once.CompareAndSwap(false, true) {
			return nil
		}
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return fmt.Errorf("capture did not stop within 30s")
		}
	}
	h.t.Cleanup(func() { stop() })
	return stop
}

// event is a consumed record with its value decoded (nil for a tombstone).
type event struct {
	topic, key string
	raw        []byte
	v          map[string]any
}

func (e event) op() string {
	if e.v == nil {
		return "tombstone"
	}
	return e.v["op"].(string)
}

func (e event) image(which string) map[string]any {
	m, _ := e.v[which].(map[string]any)
	return m
}

func (e event) source() map[string]any { return e.v["source"].(map[string]any) }

// reader is a client of the harness's broker that reads topic from its start.
func (h *harness) reader(topic string) *kgo.Client {
	h.t.Helper()
	cl, err := kafka.NewClient(h.seeds, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		h.t.Fatal(err)
	}
	return cl
}

// consume reads topic from the start until it has n records or 60 s of the capture's own time
// pass (patience).
func (h *harness) consume(topic string, n int) []event {
	h.t.Helper()
	cl := h.reader(topic)
	defer cl.Close()
	p := newPatience(h.t, "topic "+topic, 60*time.Second)
	var out []event
	for len(out) < n {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			e := event{topic: r.Topic, key: string(r.Key), raw: r.Value}
			if r.Value != nil {
				if err := json.Unmarshal(r.Value, &e.v); err != nil {
					h.t.Fatalf("record at %s/%d is not JSON: %v: %s", r.Topic, r.Offset, err, r.Value)
				}
			}
			out = append(out, e)
		})
		if len(out) < n && p.expired() {
			h.t.Fatalf("topic %s: got %d records within %s, want %d", topic, len(out), p, n)
		}
	}
	return out
}

const (
	ann = "11111111-1111-4111-8111-111111111111"
	bob = "22222222-2222-4222-8222-222222222222"
	acc = "33333333-3333-4333-8333-333333333333"
)

func TestEnvelopesSnapshotAndStream(t *testing.T) {
	h := newHarness(t)
	h.exec(`INSERT INTO customers (customer_id, first_name, last_name, email) VALUES ($1, 'Ann', 'Lee', 'ann@example.com')`, ann)
	h.exec(`INSERT INTO accounts (account_id, customer_id, account_type, currency, balance) VALUES ($1, $2, 'CHECKING', 'EUR', 100.50)`, acc, ann)
	stop := h.start(nil)

	snap := h.consume("fin.public.customers", 1)
	if got := snap[0].source()["snapshot"]; got != "first" || snap[0].op() != "r" {
		t.Fatalf("first snapshot record: op %s snapshot %v, want r/first", snap[0].op(), got)
	}
	accSnap := h.consume("fin.public.accounts", 1)
	if got := accSnap[0].source()["snapshot"]; got != "last" {
		t.Errorf("last snapshot record: snapshot %v, want last", got)
	}
	if got := accSnap[0].image("after")["balance"]; got != "100.50" {
		t.Errorf("snapshot balance = %#v, want the exact string \"100.50\"", got)
	}

	h.exec(`INSERT INTO customers (customer_id, first_name, last_name, email, created_at) VALUES ($1, 'Bob', 'Ray', 'bob@example.com', '2024-01-01 10:00:00.5+00')`, bob)
	h.exec(`UPDATE accounts SET balance = 12345678901234.99 WHERE account_id = $1`, acc)
	h.exec(`DELETE FROM customers WHERE customer_id = $1`, bob)

	cust := h.consume("fin.public.customers", 4) // r, c, d, tombstone
	accs := h.consume("fin.public.accounts", 2)  // r, u
	tests := []struct {
		name        string
		e           event
		op          string
		wantBefore  bool
		wantAfter   bool
		key         string
		checkFields func(t *testing.T, e event)
	}{
		{"insert", cust[1], "c", false, true, `{"customer_id":"` + bob + `"}`, func(t *testing.T, e event) {
			if got := e.image("after")["created_at"]; got != "2024-01-01T10:00:00.500000Z" {
				t.Errorf("created_at = %v, want Debezium's ZonedTimestamp 2024-01-01T10:00:00.500000Z", got)
			}
			if got := e.image("after")["version"]; got != float64(1) {
				t.Errorf("version = %v, want the number 1", got)
			}
		}},
		{"update keeps the whole before-image and exact money", accs[1], "u", true, true, `{"account_id":"` + acc + `"}`, func(t *testing.T, e event) {
			if b, a := e.image("before")["balance"], e.image("after")["balance"]; b != "100.50" || a != "12345678901234.99" {
				t.Errorf("balance before %#v after %#v, want \"100.50\" and \"12345678901234.99\"", b, a)
			}
			if got := e.image("before")["currency"]; got != "EUR" {
				t.Errorf("before-image currency = %v, want EUR (REPLICA IDENTITY FULL)", got)
			}
		}},
		{"delete", cust[2], "d", true, false, `{"customer_id":"` + bob + `"}`, func(t *testing.T, e event) {
			if got := e.image("before")["email"]; got != "bob@example.com" {
				t.Errorf("delete before-image email = %v, want the full row", got)
			}
		}},
		{"tombstone after delete", cust[3], "tombstone", false, false, `{"customer_id":"` + bob + `"}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.e
			if e.op() != tc.op {
				t.Fatalf("op = %s, want %s (value %s)", e.op(), tc.op, e.raw)
			}
			if e.key != tc.key {
				t.Errorf("key = %s, want %s", e.key, tc.key)
			}
			if tc.op == "tombstone" {
				return
			}
			if (e.image("before") != nil) != tc.wantBefore || (e.image("after") != nil) != tc.wantAfter {
				t.Errorf("before present %v, after present %v; want %v, %v", e.image("before") != nil, e.image("after") != nil, tc.wantBefore, tc.wantAfter)
			}
			src := e.source()
			for _, f := range []string{"version", "connector", "name", "ts_ms", "snapshot", "db", "sequence", "ts_us", "ts_ns", "schema", "table", "txId", "lsn", "xmin"} {
				if _, ok := src[f]; !ok {
					t.Errorf("source has no %s: %s", f, e.raw)
				}
			}
			if src["snapshot"] != "false" || src["db"] != h.db.Name || src["version"] != "3.6.1.Final" {
				t.Errorf("source snapshot/db/version = %v/%v/%v", src["snapshot"], src["db"], src["version"])
			}
			var seq []*string
			if err := json.Unmarshal([]byte(src["sequence"].(string)), &seq); err != nil || len(seq) != 2 || seq[1] == nil || *seq[1] != fmt.Sprint(int64(src["lsn"].(float64))) {
				t.Errorf("sequence %v does not end with the event's lsn %v", src["sequence"], src["lsn"])
			}
			if tc.checkFields != nil {
				tc.checkFields(t, e)
			}
		})
	}
	if err := stop(); err != nil {
		t.Fatalf("capture: %v", err)
	}
}

func TestUnchangedToastValueIsFilled(t *testing.T) {
	h := newHarness(t)
	h.exec(`CREATE TABLE notes (id bigint PRIMARY KEY, body text, n int)`)
	h.exec(`ALTER TABLE notes REPLICA IDENTITY FULL`)
	h.exec(`ALTER PUBLICATION fin_cdc ADD TABLE notes`)
	h.cfg.Tables = append(append([]string{}, capture.DefaultTables...), "public.notes")
	stop := h.start(nil)
	h.consume("__debezium-heartbeat.fin", 1) // streaming has begun
	// Random text does not compress, so it is stored out of line (TOAST).
	h.exec(`INSERT INTO notes SELECT 1, string_agg(md5(random()::text), '') FROM generate_series(1, 400)`)
	h.exec(`UPDATE notes SET n = 2 WHERE id = 1`)
	var body string
	if err := h.db.Pool.QueryRow(context.Background(), "SELECT body FROM notes").Scan(&body); err != nil {
		t.Fatal(err)
	}
	evs := h.consume("fin.public.notes", 2)
	upd := evs[1]
	if upd.op() != "u" {
		t.Fatalf("second event op %s, want u", upd.op())
	}
	if got, _ := upd.image("after")["body"].(string); got != body {
		t.Errorf("after.body has %d chars (%.30q...), want the unchanged %d-char TOAST value", len(got), got, len(body))
	}
	if got := upd.image("after")["n"]; got != float64(2) {
		t.Errorf("after.n = %v, want 2", got)
	}
	if err := stop(); err != nil {
		t.Fatalf("capture: %v", err)
	}
}

// blackhole takes records and never acknowledges them, like a capture killed before Kafka
// answered.
type blackhole struct{ taken atomic.Int64 }

func (b *blackhole) Produce(context.Context, *kgo.Record, func(*kgo.Record, error)) { b.taken.Add(1) }

func TestRestartAfterCrashLosesNothing(t *testing.T) {
	h := newHarness(t)
	h.exec(`INSERT INTO customers (customer_id, first_name, last_name, email) VALUES ($1, 'Ann', 'Lee', 'ann@example.com')`, ann)
	const txns, perTxn = 20, 50
	insert := func(from, to int) {
		for i := from; i < to; i++ {
			h.exec(`INSERT INTO accounts (customer_id, account_type, currency, nickname)
				SELECT $1, 'SAVINGS', 'EUR', 'n' || ($2 * 1000 + g) FROM generate_series(1, $3) g`, ann, i, perTxn)
		}
	}
	// First run: delivered normally for half the changes...
	stop := h.start(nil)
	h.consume("fin.public.customers", 1) // the snapshot is out; what follows is streamed
	insert(0, txns/2)
	h.consume("fin.public.accounts", txns/2*perTxn)
	if err := stop(); err != nil {
		t.Fatalf("first run: %v", err)
	}
	// ...then a run that dies with everything it read still unacknowledged.
	hole := &blackhole{}
	stop = h.start(hole)
	insert(txns/2, txns)
	deadline := time.Now().Add(30 * time.Second)
	for hole.taken.Load() < txns/2*perTxn && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if hole.taken.Load() < txns/2*perTxn {
		t.Fatalf("crashing run read only %d events", hole.taken.Load())
	}
	if err := stop(); err != nil {
		t.Fatalf("crashing run: %v", err)
	}
	// The restart must deliver every change the crashed run swallowed.
	stop = h.start(nil)
	got := h.consume("fin.public.accounts", txns*perTxn)
	seen := map[string]bool{}
	for _, e := range got {
		if e.op() != "c" {
			t.Fatalf("unexpected op %s", e.op())
		}
		if e.source()["snapshot"] != "false" {
			t.Fatalf("restart took a new snapshot: %s", e.raw)
		}
		seen[e.image("after")["nickname"].(string)] = true
	}
	for i := 0; i < txns; i++ {
		for g := 1; g <= perTxn; g++ {
			if n := fmt.Sprintf("n%d", i*1000+g); !seen[n] {
				t.Fatalf("change for account %s lost across the crash (%d distinct of %d)", n, len(seen), txns*perTxn)
			}
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("restart: %v", err)
	}
}

func TestIdleSlotFollowsWALAndReportsLag(t *testing.T) {
	h := newHarness(t)
	metrics := &capture.Metrics{}
	h.cfg.Metrics = metrics
	stop := h.start(nil)
	h.consume("__debezium-heartbeat.fin", 1)
	// WAL that concerns no captured table (here: another table of the same database).
	h.exec(`CREATE TABLE scratch AS SELECT g FROM generate_series(1, 20000) g`)
	var target string
	if err := h.db.Pool.QueryRow(context.Background(), "SELECT pg_current_wal_lsn()::text").Scan(&target); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var reached bool
		err := h.db.Pool.QueryRow(context.Background(),
			"SELECT confirmed_flush_lsn >= $1::text::pg_lsn FROM pg_replication_slots WHERE slot_name = $2", target, h.cfg.Slot).Scan(&reached)
		if err != nil {
			t.Fatal(err)
		}
		if reached {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot %s did not confirm past %s within 30s while idle: it would hold WAL forever", h.cfg.Slot, target)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if metrics.ConfirmedLSN.Load() == 0 || metrics.ServerLSN.Load() == 0 {
		t.Errorf("metrics not kept: confirmed %d server %d", metrics.ConfirmedLSN.Load(), metrics.ServerLSN.Load())
	}
	if metrics.Lag() != 0 {
		t.Errorf("idle capture reports lag %v, want 0", metrics.Lag())
	}
	if err := stop(); err != nil {
		t.Fatalf("capture: %v", err)
	}
}
