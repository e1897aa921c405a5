package capture_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
	"github.com/fin-orchestrator/fin-orchestrator/shared/capture"
	"github.com/fin-orchestrator/fin-orchestrator/shared/kafka"
)

// collector keeps every record of the change topics and the transaction metadata topic of one
// broker, in order per topic.
type collector struct {
	mu     sync.Mutex
	topics map[string][]*kgo.Record
	cancel context.CancelFunc
}

func collect(t *testing.T, seeds []string, since time.Time) *collector {
	t.Helper()
	cl, err := kafka.NewClient(seeds, kgo.ConsumeRegex(), kgo.ConsumeTopics(`^fin\.public\..*`, `^fin\.transaction_metadata$`),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(100*time.Millisecond), kgo.MetadataMaxAge(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{topics: map[string][]*kgo.Record{}, cancel: cancel}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				if r.Timestamp.Before(since) {
					return // an earlier run's record on a broker that is not fresh
				}
				if r.Topic == "fin.public.debezium_signal" {
					// Debezium publishes its signal table's rows (the signal, and both
					// connectors' watermarks, interleaved by chance); the Go capture does not
					// (docs/capture.md).
					return
				}
				c.mu.Lock()
				c.topics[r.Topic] = append(c.topics[r.Topic], r)
				c.mu.Unlock()
			})
		}
	}()
	t.Cleanup(func() { cancel(); <-done; cl.Close() })
	return c
}

// Patience of the collector's waits: Debezium's JVM and both connectors' snapshots are slow on a
// loaded machine, and each connector's slot waits for every transaction open on the cluster when
// its creation began (another package's capture reading a large table holds one for minutes). So
// a wait gives up only after collectStall of its own time without a new record (time a slot being
// created in the test's database waits for the cluster is not its own: patience), or collectLimit
// in all.
const (
	collectStall = 3 * time.Minute
	collectLimit = 15 * time.Minute
)

// waitFor waits until some record satisfies ok.
func (c *collector) waitFor(t *testing.T, what string, ok func(*kgo.Record) bool) {
	t.Helper()
	c.wait(t, what, func(topics map[string][]*kgo.Record) bool {
		for _, rs := range topics {
			for _, r := range rs {
				if ok(r) {
					return true
				}
			}
		}
		return false
	})
}

// waitCount waits until the topics whose names start with prefix hold n records in all.
func (c *collector) waitCount(t *testing.T, what, prefix string, n int) {
	t.Helper()
	c.wait(t, fmt.Sprintf("%d records from %s", n, what), func(topics map[string][]*kgo.Record) bool {
		total := 0
		for topic, rs := range topics {
			if strings.HasPrefix(topic, prefix) {
				total += len(rs)
			}
		}
		return total >= n
	})
}

// wait polls done on the records collected so far until it holds, patiently (collectStall).
func (c *collector) wait(t *testing.T, what string, done func(map[string][]*kgo.Record) bool) {
	t.Helper()
	p := newPatience(t, what, collectStall).following(c.counts, collectLimit)
	for {
		c.mu.Lock()
		ok := done(c.topics)
		c.mu.Unlock()
		if ok {
			return
		}
		if p.expired() {
			t.Fatalf("timed out waiting for %s: not within %s", what, p)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// counts is how many records each topic holds, the progress of the collector's waits.
func (c *collector) counts() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	counts := map[string]int{}
	for topic, rs := range c.topics {
		counts[topic] = len(rs)
	}
	return fmt.Sprint(counts)
}

func (c *collector) snapshot() map[string][]*kgo.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]*kgo.Record{}
	for k, v := range c.topics {
		out[k] = append([]*kgo.Record(nil), v...)
	}
	return out
}

var (
	// The envelope's own ts_ms/ts_us/ts_ns: when the connector processed the event (wall clock).
	envelopeClock = regexp.MustCompile(`"ts_ms":\d+,"ts_us":\d+,"ts_ns":\d+}$`)
	// A snapshot event's source times are when its table was read, and its lsn, txId and sequence
	// are those of each connector's own slot and snapshot transaction (or, for an incremental
	// snapshot, its own watermarks).
	// Debezium 3.6.1 writes txId and lsn null on incremental snapshot rows; the Go capture gives
	// them its high watermark's, so that they order in the log (docs/capture.md).
	snapshotSource = regexp.MustCompile(`"(ts_ms|ts_us|ts_ns|txId|lsn)":(?:\d+|null)|"sequence":"\[[^\]]*\]"`)
)

// dataCollections is an END's list of per-table counts.
var dataCollections = regexp.MustCompile(`"data_collections":\[([^\]]*)\]`)

// comparable blanks the fields that legitimately differ between two captures of the same
// changes, and sorts an END's per-table counts (Debezium lists them in its hash map's order, the
// Go capture in the order the tables first appear: the list is a set); everything else must
// match byte for byte.
func comparable(v []byte) string {
	if m := dataCollections.FindSubmatchIndex(v); m != nil {
		items := strings.SplitAfter(string(v[m[2]:m[3]]), "},")
		for i := range items {
			items[i] = strings.TrimSuffix(items[i], ",")
		}
		slices.Sort(items)
		return string(v[:m[2]]) + strings.Join(items, ",") + string(v[m[3]:])
	}
	s := envelopeClock.ReplaceAllString(string(v), `"ts_ms":0,"ts_us":0,"ts_ns":0}`)
	if strings.Contains(s, `"op":"r"`) {
		s = snapshotSource.ReplaceAllString(s, `"$1":0`)
	}
	return s
}

// TestDebeziumContract runs real Debezium 3.6.1 (Kafka Connect, the repo's connector
// configuration) on a real Kafka broker beside the Go capture on the embedded broker, applies
// the same changes, and compares the events. scripts/test.d/40-debezium-contract.sh starts the
// broker and sets FIN_CONTRACT_KAFKA.
func TestDebeziumContract(t *testing.T) {
	realKafka := os.Getenv("FIN_CONTRACT_KAFKA")
	if realKafka == "" {
		t.Skip("FIN_CONTRACT_KAFKA is not set: run scripts/test.d/40-debezium-contract.sh")
	}
	h := newHarness(t)
	ctx := context.Background()
	// A test-only table with a large text column, for TOAST.
	h.exec(`CREATE TABLE notes (id bigint PRIMARY KEY, body text, n int, at timestamptz)`)
	h.exec(`ALTER TABLE notes REPLICA IDENTITY FULL`)
	h.exec(`ALTER PUBLICATION fin_cdc ADD TABLE notes`)
	tables := append(append([]string{}, capture.DefaultTables...), "public.notes")
	h.cfg.Tables = tables

	// Rows present before both start: the initial snapshot.
	h.exec(`INSERT INTO customers (customer_id, first_name, last_name, email, city) VALUES ($1, 'Ann', 'Lee', 'ann@example.com', 'Zürich "Nord"')`, ann)
	h.exec(`INSERT INTO accounts (account_id, customer_id, account_type, currency, balance) VALUES ($1, $2, 'CHECKING', 'EUR', 100.50)`, acc, ann)
	h.exec(`INSERT INTO notes VALUES (1, 'short', 1, '2024-02-29 23:59:59+00')`)

	// Debezium, with the repo's configuration plus the test table.
	props, err := os.ReadFile("../../debezium/fin-postgres.properties")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := regexp.MustCompile(`(?m)^table\.include\.list=.*$`).ReplaceAllString(string(props), "table.include.list="+strings.Join(tables, ","))
	if err := os.WriteFile(filepath.Join(dir, "connector.properties"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	dbzSlot := h.cfg.Slot + "_dbz"
	script := func(action string) *exec.Cmd {
		cmd := exec.Command("bash", "../../scripts/debezium.sh", action)
		cmd.Env = append(os.Environ(), "KAFKA_BROKERS="+realKafka, "DEBEZIUM_DIR="+dir,
			"FIN_DBZ_PG_DATABASE="+h.db.Name, "FIN_DBZ_SLOT="+dbzSlot, "DEBEZIUM_CONNECTOR="+filepath.Join(dir, "connector.properties"))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		return cmd
	}
	// Cleanups run last-in first-out: stop Connect, then drop its slot, then the database goes.
	t.Cleanup(func() { dropSlot(t, h.db, dbzSlot) })
	t.Cleanup(func() {
		if err := script("stop").Run(); err != nil {
			t.Logf("stop debezium: %v", err)
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "connect.log"))
			t.Logf("connect.log (tail):\n%s", tail(string(log), 4000))
		}
	})
	since := time.Now().Add(-time.Second)
	if err := script("start").Run(); err != nil {
		t.Fatalf("start debezium: %v", err)
	}
	stop := h.start(nil)

	dbz := collect(t, []string{realKafka}, since)
	ours := collect(t, h.seeds, since)
	isLast := func(r *kgo.Record) bool { return strings.Contains(string(r.Value), `"snapshot":"last"`) }
	dbz.waitFor(t, "Debezium's snapshot", isLast)
	ours.waitFor(t, "the Go capture's snapshot", isLast)

	// The same OLTP changes for both.
	apply := func(name string, fn func(tx pgx.Tx) error) {
		t.Helper()
		if err := pgx.BeginFunc(ctx, h.db.Pool, fn); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	apply("create customer", func(tx pgx.Tx) error {
		_, err := bank.CreateCustomer(ctx, tx, uuid.MustParse(bob), bank.CustomerFields{FirstName: "Bob", LastName: "Ray", Email: "bob@example.com"})
		return err
	})
	second := uuid.New()
	apply("open account", func(tx pgx.Tx) error {
		_, err := bank.OpenAccount(ctx, tx, bank.NewAccount{ID: second, CustomerID: uuid.MustParse(ann), Type: bank.Savings, Currency: "EUR"})
		return err
	})
	apply("deposit", func(tx pgx.Tx) error {
		_, err := bank.Post(ctx, tx, bank.Posting{ID: uuid.New(), AccountID: uuid.MustParse(acc), Type: bank.Deposit, Amount: decimal.RequireFromString("1000000.07")})
		return err
	})
	apply("transfer", func(tx pgx.Tx) error {
		_, err := bank.Post(ctx, tx, bank.Posting{ID: uuid.New(), AccountID: uuid.MustParse(acc), Type: bank.Transfer,
			Amount: decimal.RequireFromString("0.01"), RelatedAccountID: &second})
		return err
	})
	h.exec(`UPDATE customers SET city = 'Genève', postal_code = E'12\t04' WHERE customer_id = $1`, ann)
	h.exec(`DELETE FROM customers WHERE customer_id = $1`, bob)
	h.exec(`UPDATE notes SET body = (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 500)), at = '2024-06-30 21:59:59.123+02' WHERE id = 1`)
	h.exec(`UPDATE notes SET n = 2 WHERE id = 1`) // body unchanged: an unchanged TOAST value
	h.exec(`INSERT INTO notes VALUES (2, NULL, NULL, NULL), (3, 'end', 3, now())`)

	// customers r c u d tombstone; accounts r c u (deposit) u u (transfer); transactions c c; notes r u u c c.
	const streamed = 17
	dbz.waitCount(t, "Debezium", "fin.public.", streamed)
	ours.waitCount(t, "the Go capture", "fin.public.", streamed)
	// Each of the 9 transactions above has a BEGIN and an END on the transaction metadata topic;
	// the last one's END comes last.
	lastEnd := func(r *kgo.Record) bool {
		return r.Topic == "fin.transaction_metadata" && strings.Contains(string(r.Value), `"data_collection":"public.notes","event_count":2}`)
	}
	dbz.waitFor(t, "Debezium's transaction metadata", lastEnd)
	ours.waitFor(t, "the Go capture's transaction metadata", lastEnd)

	// One execute-snapshot signal, taken by both through their slots: an incremental snapshot
	// of accounts (two rows, op r, source.snapshot "incremental").
	if _, err := capture.RequestSnapshot(ctx, h.db.Pool, "public.debezium_signal", []string{"public.accounts"}); err != nil {
		t.Fatal(err)
	}
	const events = streamed + 2
	dbz.waitCount(t, "Debezium's incremental snapshot", "fin.public.", events)
	ours.waitCount(t, "the Go capture's incremental snapshot", "fin.public.", events)
	for name, c := range map[string]*collector{"Debezium": dbz, "the Go capture": ours} {
		n := 0
		for _, r := range c.snapshot()["fin.public.accounts"] {
			if strings.Contains(string(r.Value), `"snapshot":"incremental"`) {
				n++
			}
		}
		if n != 2 {
			t.Errorf("%s wrote %d incremental snapshot events for accounts, want 2", name, n)
		}
	}
	time.Sleep(time.Second) // anything beyond the expected would show up now
	if err := stop(); err != nil {
		t.Fatalf("capture: %v", err)
	}

	want, got := dbz.snapshot(), ours.snapshot()
	want["fin.transaction_metadata"] = withoutMessageTransactions(want["fin.transaction_metadata"])
	total := 0
	for topic, ws := range want {
		gs := got[topic]
		if len(gs) != len(ws) {
			t.Errorf("%s: Debezium wrote %d records, the Go capture %d", topic, len(ws), len(gs))
		}
		for i := 0; i < len(ws) && i < len(gs); i++ {
			w, g := ws[i], gs[i]
			if string(w.Key) != string(g.Key) {
				t.Errorf("%s[%d] key:\n debezium %s\n go       %s", topic, i, w.Key, g.Key)
			}
			if (w.Value == nil) != (g.Value == nil) {
				t.Errorf("%s[%d]: tombstone mismatch: debezium %q, go %q", topic, i, w.Value, g.Value)
				continue
			}
			if cw, cg := comparable(w.Value), comparable(g.Value); cw != cg {
				t.Errorf("%s[%d] value differs:\n debezium %s\n go       %s", topic, i, cw, cg)
			}
			total++
		}
	}
	for topic := range got {
		if _, ok := want[topic]; !ok {
			t.Errorf("the Go capture wrote topic %s, Debezium did not", topic)
		}
	}
	if total < events {
		t.Errorf("compared only %d records; the workload makes more", total)
	}
	t.Logf("compared %d records over %d topics", total, len(want))
}

// withoutMessageTransactions drops the boundaries of transactions the Go capture publishes no
// events of: those that carried only a logical decoding message (the Go capture's heartbeats,
// written into the database both captures read; Debezium names their data collection after a
// Java object) and those that wrote the signal table (the signal, both connectors' watermarks:
// the Go capture does not publish the signal table, docs/capture.md).
func withoutMessageTransactions(rs []*kgo.Record) []*kgo.Record {
	drop := map[string]bool{}
	for _, r := range rs {
		if v := string(r.Value); strings.Contains(v, "LogicalDecodingMessage") || strings.Contains(v, `"public.debezium_signal"`) {
			drop[txIDOf(r)] = true
		}
	}
	var out []*kgo.Record
	for _, r := range rs {
		if !drop[txIDOf(r)] {
			out = append(out, r)
		}
	}
	return out
}

// txIDOf is the Postgres transaction id of a boundary record: its key is {"id":"<txId>:<lsn>"}.
func txIDOf(r *kgo.Record) string {
	id, _, _ := strings.Cut(strings.TrimPrefix(string(r.Key), `{"id":"`), ":")
	return id
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return fmt.Sprint(s)
}
