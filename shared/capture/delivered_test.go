package capture_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/parquet-go/parquet-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
	"github.com/fin-orchestrator/fin-orchestrator/shared/capture"
	"github.com/fin-orchestrator/fin-orchestrator/shared/kafka"
)

// logBuffer is a log destination safe for the capture's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// slotLSN is the slot's confirmed_flush_lsn.
func (h *harness) slotLSN() pglogrepl.LSN {
	h.t.Helper()
	var s string
	if err := h.db.Pool.QueryRow(context.Background(), "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", h.cfg.Slot).Scan(&s); err != nil {
		h.t.Fatal(err)
	}
	lsn, err := pglogrepl.ParseLSN(s)
	if err != nil {
		h.t.Fatal(err)
	}
	return lsn
}

// delivered is the position a destination's manifest records.
func delivered(t *testing.T, m *memManifests) pglogrepl.LSN {
	t.Helper()
	mf := m.manifest(t)
	if mf == nil || mf.Delivered == "" {
		t.Fatalf("manifest records no delivered position: %+v", mf)
	}
	lsn, err := pglogrepl.ParseLSN(mf.Delivered)
	if err != nil {
		t.Fatal(err)
	}
	return lsn
}

// runCaughtUp runs the capture into the current broker and lake until caught up with a last write to
// items, checking all along that the slot never gets ahead of the lake's manifest (the manifest is
// written before the slot is confirmed).
func (h *harness) runCaughtUp(lake *memManifests, writes func(), wait func(*capture.Metrics) bool) (*capture.Metrics, string) {
	h.t.Helper()
	logs := &logBuffer{}
	metrics := &capture.Metrics{}
	h.cfg.Manifest, h.cfg.Metrics = lake, metrics
	h.cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	stop := h.start(nil)
	sampled := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			// From the first confirm on (before it, a lake that missed changes is behind the slot
			// until the capture has noticed). Slot first, manifest second: the manifest can only
			// have moved further since.
			if metrics.ConfirmedLSN.Load() == 0 {
				continue
			}
			var slot pglogrepl.LSN
			if err := h.db.Pool.QueryRow(context.Background(), "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = $1", h.cfg.Slot).Scan(&slot); err != nil {
				h.t.Errorf("read slot: %v", err)
				return
			}
			if mf := lake.manifest(h.t); mf != nil && mf.Delivered != "" {
				if d, _ := pglogrepl.ParseLSN(mf.Delivered); d < slot {
					h.t.Errorf("slot confirmed to %s while the lake's manifest records only %s", slot, d)
					return
				}
			}
		}
	}()
	began := time.Now()
	running := func(cond func() bool) func() bool {
		return func() bool {
			if err := h.ended(); err != nil {
				h.t.Fatalf("the capture stopped: %v\n%s", *err, h.stallReport(metrics, logs))
			}
			return cond()
		}
	}
	// The machine's load (other packages' tests, other work) slows a capture down: the waits
	// give up after a minute without progress, or ten in all. Progress is streaming begun, rows
	// snapshotted (not chunks: a read held by an open transaction emits empty ones) and tables
	// completed; then the confirmed position (a heartbeat moves it only past all before).
	snapshotting := func() string {
		return fmt.Sprintf("streaming %v, %d rows snapshotted, %d tables completed", metrics.ConfirmedLSN.Load() > 0,
			metrics.SnapshotRows.Load(), metrics.SnapshotsCompleted.Load())
	}
	report := func() string { return h.stallReport(metrics, logs) }
	waitPatiently(h.t, newPatience(h.t, "capture started", time.Minute).following(snapshotting, 10*time.Minute),
		running(func() bool { return wait(metrics) }), report)
	writes()
	h.exec(`UPDATE items SET v = v + 1000 WHERE id = (SELECT min(id) FROM items)`)
	var end uint64
	if err := h.db.Pool.QueryRow(context.Background(), "SELECT pg_current_wal_lsn() - '0/0'").Scan(&end); err != nil {
		h.t.Fatal(err)
	}
	confirmed := func() string { return fmt.Sprint("confirmed ", metrics.ConfirmedLSN.Load()) }
	waitPatiently(h.t, newPatience(h.t, "capture caught up", time.Minute).following(confirmed, 10*time.Minute),
		running(func() bool { return metrics.ConfirmedLSN.Load() >= end }), report)
	h.t.Logf("capture started and caught up in %s", time.Since(began).Round(time.Millisecond))
	close(done)
	<-sampled
	if err := stop(); err != nil {
		h.t.Fatalf("capture: %v", err)
	}
	if d, s := delivered(h.t, lake), h.slotLSN(); d < s {
		h.t.Errorf("after a clean stop the slot is at %s, the manifest at %s", s, d)
	}
	return metrics, logs.String()
}

// TestLakeThatMissedSharedSlotChangesIsSnapshottedAgain is two checkouts sharing one cluster and
// one slot name, each with its own lake: A runs and stops, B runs (consuming changes from the
// shared slot that A's lake never receives), then A runs again while writers update, insert and
// delete. A must notice the slot moved past what its lake recorded and snapshot every table
// again, and write each table's snapshot window beside the data; its replayed topic, with every
// key a window ends (alive before the window, no event inside it) taken as deleted, must equal
// the table: the rows B's destination saw deleted end in A too, and no other row does.
func TestLakeThatMissedSharedSlotChangesIsSnapshottedAgain(t *testing.T) {
	h := newHarness(t)
	h.withItems(300)
	h.cfg.ChunkSize = 50
	// Every table recorded and its window written (one held for the writers' open transactions
	// is written once they have ended).
	all := func(m *capture.Metrics) bool {
		return m.SnapshotsCompleted.Load() >= int64(len(h.cfg.Tables)) && m.WindowsHeld.Load() == 0
	}
	streaming := func(m *capture.Metrics) bool { return m.ConfirmedLSN.Load() > 0 }
	noWrites := func() {}

	// A: the initial snapshot, some changes, a clean stop.
	lakeA, seedsA := newManifests(), h.seeds
	_, logs := h.runCaughtUp(lakeA, func() { h.exec(`UPDATE items SET v = v + 1 WHERE id % 3 = 0`) }, streaming)
	if m := lakeA.manifest(t); len(m.Snapshots) != len(h.cfg.Tables) {
		t.Fatalf("A's manifest after the first run: %+v", m)
	}
	// A again, nothing consumed elsewhere: its lake is whole, nothing is snapshotted.
	h.exec(`UPDATE items SET v = v + 1 WHERE id % 5 = 0`) // while nothing captures
	metrics, logs := h.runCaughtUp(lakeA, noWrites, streaming)
	if n := metrics.SnapshotsCompleted.Load(); n != 0 || strings.Contains(logs, "snapshotted again") {
		t.Fatalf("a lake that received everything was snapshotted again (%d tables):\n%s", n, logs)
	}

	// B: its own (new) lake and broker, the same slot. What it consumes never reaches A's lake.
	// Its deletes never reach A as events: only A's snapshot windows can end those rows.
	deliveredA := delivered(t, lakeA)
	h.newKafka()
	lakeB := newManifests()
	h.runCaughtUp(lakeB, func() {
		h.exec(`UPDATE items SET v = v + 7 WHERE id % 4 = 0`)
		h.exec(`INSERT INTO items SELECT g % 7, g, 5 FROM generate_series(1001, 1040) g`)
		h.exec(`DELETE FROM items WHERE id % 9 = 0`)
	}, all)
	slotAfterB := h.slotLSN()
	if d := delivered(t, lakeA); d >= slotAfterB {
		t.Fatalf("the slot (%s) did not move past A's manifest (%s): the scenario did not happen", slotAfterB, d)
	}

	// Back in A, writers streaming through the snapshot.
	h.seeds = seedsA
	stopWriters := h.writers(2, 1200, new(atomic.Int64))
	metrics, logs = h.runCaughtUp(lakeA, stopWriters, all)
	if !strings.Contains(logs, "another destination consumed the changes in between") {
		t.Errorf("no log line saying why A snapshots again:\n%s", logs)
	}
	m := lakeA.manifest(t)
	for _, tb := range h.cfg.Tables {
		if rec := m.Snapshots[tb]; rec.Kind != "incremental" {
			t.Errorf("A's manifest: %s recorded as %+v, want an incremental snapshot", tb, rec)
		}
	}
	if metrics.SnapshotRows.Load() == 0 {
		t.Errorf("A's capture read no snapshot rows")
	}
	evs, want := h.drain("fin.public.items"), h.items()
	if got := replay(t, evs); len(got) <= len(want) {
		t.Errorf("A's replayed topic has %d rows, the table %d: no row deleted in the gap to end", len(got), len(want))
	}
	windows := snapshotWindows(t, lakeA, "items")
	if len(windows) == 0 {
		t.Fatalf("no snapshot window of items beside A's data: %v", lakeA.keys())
	}
	// Each window says what A missed: from its delivered position to where its stream resumed.
	resumed := regexp.MustCompile(`resuming from slot.*? lsn=([0-9A-F]+/[0-9A-F]+)`).FindStringSubmatch(logs)
	if resumed == nil {
		t.Fatalf("no resume position in A's log:\n%s", logs)
	}
	resumedAt, err := pglogrepl.ParseLSN(resumed[1])
	if err != nil || resumedAt < slotAfterB {
		t.Fatalf("A resumed at %s (%v), before the slot B left (%s)", resumed[1], err, slotAfterB)
	}
	for _, w := range windows {
		var gap struct {
			From *int64 `json:"gap_from_lsn"`
			To   *int64 `json:"gap_to_lsn"`
		}
		if err := json.Unmarshal([]byte(*w.After), &gap); err != nil {
			t.Fatal(err)
		}
		if gap.From == nil || gap.To == nil || *gap.From != int64(deliveredA) || *gap.To != int64(resumedAt) {
			t.Errorf("window %s: want the gap from A's delivered %d to where it resumed, %d", *w.After,
				int64(deliveredA), int64(resumedAt))
		}
	}
	got, ended := replayWindows(t, evs, windows)
	if ended == 0 {
		// A window lowered to the slot's restart_lsn (a transaction of this database open across
		// the table's snapshot, or one that ended before the capture could tell its database)
		// opens before everything the lake holds and so ends nothing: say whether that happened.
		var lowered []string
		for _, l := range strings.Split(logs, "\n") {
			if strings.Contains(l, "restart_lsn") {
				lowered = append(lowered, l)
			}
		}
		t.Errorf("no key ended by a snapshot window; the capture's log on lowering windows:\n%s", strings.Join(lowered, "\n"))
	}
	if len(got) != len(want) {
		t.Errorf("A's replayed topic with its windows has %d rows, the table %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("row %s: replayed in A with its windows %q, table %q", k, got[k], v)
		}
	}
	t.Logf("windows of items: %+v; keys ended: %d; rows dropped for a newer streamed change: %d", windows, ended, metrics.SnapshotDropped.Load())
}

// writers updates, inserts and deletes items (ids 1 to keys) from n goroutines until the returned
// stop is called, counting the writes.
func (h *harness) writers(n, keys int, writes *atomic.Int64) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), 11))
			for ctx.Err() == nil {
				var err error
				switch id := 1 + rnd.IntN(keys); rnd.IntN(8) {
				case 0:
					_, err = h.db.Pool.Exec(ctx, `DELETE FROM items WHERE id = $1`, id)
				case 1:
					_, err = h.db.Pool.Exec(ctx, `INSERT INTO items VALUES ($1 % 7, $1, 1) ON CONFLICT DO NOTHING`, id)
				default:
					_, err = h.db.Pool.Exec(ctx, `UPDATE items SET v = v + 1 WHERE id = $1`, id)
				}
				if err != nil && ctx.Err() == nil {
					h.t.Errorf("writer: %v", err)
					return
				}
				writes.Add(1)
			}
		}()
	}
	return func() { cancel(); wg.Wait() }
}

// snapshotWindows are the windows of table the capture wrote into lake, decoded from Parquet.
func snapshotWindows(t *testing.T, lake *memManifests, table string) []bronze.Record {
	t.Helper()
	var out []bronze.Record
	for _, key := range lake.keys() {
		k, err := bronze.ParseKey(key)
		if err != nil || k.Table != bronze.SnapshotWindowsTable {
			continue
		}
		body, _ := lake.Read(context.Background(), key)
		rows, err := parquet.Read[bronze.Record](bytes.NewReader(body), int64(len(body)))
		if err != nil || len(rows) != 1 {
			t.Fatalf("window object %s: %d rows, %v", key, len(rows), err)
		}
		if rows[0].SourceTable == table {
			out = append(out, rows[0])
		}
	}
	return out
}

// replayWindows is replay, then a key whose last event comes before a window's opening position
// (so it has no event inside the window) and is not a delete is taken as deleted: the rule the
// history (docs/dbt.md) and reconcile apply. It returns the rows and how many keys windows ended.
func replayWindows(t *testing.T, evs []event, windows []bronze.Record) (map[string]string, int) {
	t.Helper()
	last := map[string]float64{}
	for _, e := range evs {
		if e.v != nil {
			last[e.key] = e.source()["lsn"].(float64)
		}
	}
	state, ended := replay(t, evs), 0
	for key := range state {
		for _, w := range windows {
			if last[key] < float64(w.Offset) {
				delete(state, key)
				ended++
				break
			}
		}
	}
	return state, ended
}

// heldManifests is a destination whose writes wait, once hold is set, until release is closed:
// a slow S3 PUT.
type heldManifests struct {
	*memManifests
	hold    atomic.Bool
	waiting atomic.Bool // a write waits
	gaveUp  atomic.Bool // a waiting write was cancelled
	release chan struct{}
}

func (m *heldManifests) Write(ctx context.Context, key string, body []byte) error {
	if m.hold.Load() {
		m.waiting.Store(true)
		select {
		case <-m.release:
		case <-ctx.Done():
			m.gaveUp.Store(true)
			return ctx.Err()
		}
	}
	return m.memManifests.Write(ctx, key, body)
}

// holdManifestWrite starts the capture on a table items (into producer; nil: the broker) with a
// destination whose writes wait once it holds them, inserts item 1 and returns once a periodic
// write waits (usually of item 1's position; it may be of an earlier heartbeat's); before is the
// delivered position the destination holds.
func (h *harness) holdManifestWrite(producer capture.Producer) (lake *heldManifests, metrics *capture.Metrics, stop func() error, before pglogrepl.LSN) {
	h.t.Helper()
	h.withItems(0)
	lake = &heldManifests{memManifests: newManifests(), release: make(chan struct{})}
	metrics = &capture.Metrics{}
	h.cfg.Manifest, h.cfg.Metrics = lake, metrics
	stop = h.start(producer)
	h.consume("__debezium-heartbeat.fin", 1) // streaming
	waitFor(h.t, "a first delivered position", 10*time.Second, func() bool { return metrics.ConfirmedLSN.Load() > 0 })
	lake.hold.Store(true)
	h.exec(`INSERT INTO items VALUES (1, 1, 1)`)
	waitFor(h.t, "a manifest write after the insert", 10*time.Second, lake.waiting.Load)
	// Writes go one at a time: with one waiting, what the store holds stays as it is.
	return lake, metrics, stop, delivered(h.t, lake.memManifests)
}

// The periodic manifest write (the delivered position, an S3 PUT in AWS) runs beside the stream:
// while it waits, changes go on to Kafka, and the slot is confirmed no further than what the
// manifest held before. On the stream's goroutine, the PUT would hold every change behind it
// (0.1-1.4 s under load, once a second during a snapshot).
func TestStreamGoesOnWhileTheManifestIsWritten(t *testing.T) {
	h := newHarness(t)
	lake, metrics, stop, before := h.holdManifestWrite(nil)
	events := metrics.Events.Load()
	h.exec(`INSERT INTO items VALUES (1, 2, 2)`)
	waitFor(t, "the second insert produced while the manifest write waits", 5*time.Second, func() bool { return metrics.Events.Load() > events })
	time.Sleep(500 * time.Millisecond) // status periods pass: none may confirm what the store lacks
	if slot := h.slotLSN(); slot > before {
		t.Errorf("slot confirmed to %s while the manifest write waits; the store holds %s", slot, before)
	}
	close(lake.release)
	waitFor(t, "the delivered position written", 10*time.Second, func() bool { return delivered(t, lake.memManifests) > before })
	if err := stop(); err != nil {
		t.Fatalf("capture: %v", err)
	}
	if slot, d := h.slotLSN(), delivered(t, lake.memManifests); slot > d {
		t.Errorf("slot confirmed to %s past the manifest's %s", slot, d)
	}
	if got := len(h.consume("fin.public.items", 2)); got != 2 {
		t.Errorf("%d events of items, want 2", got)
	}
}

// failingProducer hands records to next until fail is set, then fails them: Kafka gone.
type failingProducer struct {
	next   capture.Producer
	fail   atomic.Bool
	handed atomic.Int64 // records of topic count handed on
	topic  string
}

func (p *failingProducer) Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	if p.fail.Load() {
		promise(r, errors.New("broker gone"))
		return
	}
	if r.Topic == p.topic {
		p.handed.Add(1)
	}
	p.next.Produce(ctx, r, promise)
}

// A stream that fails (here Kafka) while the periodic manifest write hangs (a store that does
// not answer) stops within a bounded time, with an error naming the store; the write is given
// up (cancelled), the slot stays confirmed no further than
// what the store holds, and the restart delivers everything from there. The stop must not wait
// for the write: nothing else cancels it when the stream fails with its context alive.
func TestFailedStreamDoesNotWaitForAHungManifestStore(t *testing.T) {
	defer capture.SetFinalStatusFor(time.Second)()
	h := newHarness(t)
	cl, err := kafka.NewClient(h.seeds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	producer := &failingProducer{next: cl, topic: "fin.public.items"}
	lake, _, stop, before := h.holdManifestWrite(producer)
	producer.fail.Store(true)
	h.exec(`INSERT INTO items VALUES (1, 2, 2)`)
	waitFor(t, "the capture to stop by itself after the delivery failed", 15*time.Second, func() bool { return h.ended() != nil })
	runErr := *h.ended()
	if runErr == nil || !strings.Contains(runErr.Error(), "broker gone") ||
		!strings.Contains(runErr.Error(), "manifest store did not answer") || !strings.Contains(runErr.Error(), capture.ManifestKey("fin")) {
		t.Errorf("the capture stopped with %v; want the delivery failure and the manifest store that did not answer", runErr)
	}
	// The cancel reaches the held write on its own goroutine, maybe after the stop returned.
	waitFor(t, "the hung manifest write cancelled", 5*time.Second, lake.gaveUp.Load)
	if d := delivered(t, lake.memManifests); d != before {
		t.Errorf("the store holds delivered position %s, want %s (the write was given up)", d, before)
	}
	if slot := h.slotLSN(); slot > before {
		t.Errorf("slot confirmed to %s past the %s the store holds", slot, before)
	}
	_ = stop()

	lake.hold.Store(false)
	producer.fail.Store(false)
	// The first run delivered item 1 (unless the write held was an earlier one); the restart
	// resumes from the slot, before it: 1 again, then 2.
	first := int(producer.handed.Load())
	stop = h.start(producer)
	var ids []string
	for _, e := range h.consume("fin.public.items", first+2) {
		ids = append(ids, fmt.Sprint(e.image("after")["id"]))
	}
	slices.Sort(ids)
	if got, want := strings.Join(ids, " "), strings.Repeat("1 ", first)+"1 2"; got != want {
		t.Errorf("items delivered across the restart: %s, want %s", got, want)
	}
	if err := stop(); err != nil {
		t.Fatalf("restarted capture: %v", err)
	}
}
