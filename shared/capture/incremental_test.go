package capture_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fin-orchestrator/fin-orchestrator/shared/capture"
	"github.com/fin-orchestrator/fin-orchestrator/shared/kafka"
)

// memManifests is a ManifestStore in memory: the destination of a test.
type memManifests struct {
	mu   sync.Mutex
	objs map[string][]byte
}

func newManifests() *memManifests { return &memManifests{objs: map[string][]byte{}} }

func (m *memManifests) Read(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.objs[key], nil
}

func (m *memManifests) Write(_ context.Context, key string, body []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[key] = append([]byte(nil), body...)
	return nil
}

func (m *memManifests) keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.objs))
}

func (m *memManifests) manifest(t *testing.T) *capture.Manifest {
	t.Helper()
	body, _ := m.Read(context.Background(), capture.ManifestKey("fin"))
	if body == nil {
		return nil
	}
	var out capture.Manifest
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("manifest: %v: %s", err, body)
	}
	return &out
}

// withItems adds public.items (a composite primary key) to the captured tables, with n rows.
func (h *harness) withItems(n int) {
	h.exec(`CREATE TABLE items (grp int, id bigint, v int NOT NULL, PRIMARY KEY (grp, id))`)
	h.exec(`ALTER TABLE items REPLICA IDENTITY FULL`)
	h.exec(`ALTER PUBLICATION fin_cdc ADD TABLE items`)
	h.exec(`INSERT INTO items SELECT g % 7, g, 0 FROM generate_series(1, $1) g`, n)
	h.cfg.Tables = append(append([]string{}, capture.DefaultTables...), "public.items")
}

// newKafka gives the harness a new, empty broker: a destination that lost everything.
func (h *harness) newKafka() {
	h.t.Helper()
	seeds, stop, err := kafka.StartEmbedded(context.Background(), kafka.EmbeddedConfig{})
	if err != nil {
		h.t.Fatalf("embedded kafka: %v", err)
	}
	h.t.Cleanup(stop)
	h.seeds = seeds
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	waitForReport(t, what, d, cond, nil)
}

// waitForReport is waitFor, logging report() when it gives up. Time a capture spends waiting for
// transactions elsewhere on the cluster does not count (patience).
func waitForReport(t *testing.T, what string, d time.Duration, cond func() bool, report func() string) {
	t.Helper()
	waitPatiently(t, newPatience(t, what, d), cond, report)
}

func waitPatiently(t *testing.T, p *patience, cond func() bool, report func() string) {
	t.Helper()
	what := p.what
	for !cond() {
		if p.expired() {
			if report != nil {
				t.Log(report())
			}
			t.Fatalf("%s: not within %s", what, p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// drain reads every record of topic from the start until the topic has been quiet for a second.
func (h *harness) drain(topic string) []event {
	h.t.Helper()
	cl := h.reader(topic)
	defer cl.Close()
	var out []event
	// The first fetch of a new reader can take longer than a second on a loaded machine (or
	// under -race): an empty poll ends the drain only once something was read, or after 20 s.
	began := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			e := event{topic: r.Topic, key: string(r.Key), raw: r.Value}
			if r.Value != nil {
				if err := json.Unmarshal(r.Value, &e.v); err != nil {
					h.t.Fatalf("record is not JSON: %v", err)
				}
			}
			out = append(out, e)
		})
		if n == 0 && (len(out) > 0 || time.Since(began) > 20*time.Second) {
			return out
		}
	}
}

// replay applies a topic's events in order (one key stays in one partition) and returns each
// key's last row as "grp/id=v".
func replay(t *testing.T, evs []event) map[string]string {
	t.Helper()
	state := map[string]string{}
	for _, e := range evs {
		switch e.op() {
		case "tombstone":
		case "d":
			delete(state, e.key)
		default:
			a := e.image("after")
			state[e.key] = fmt.Sprintf("%v/%v=%v", a["grp"], a["id"], a["v"])
		}
	}
	return state
}

// snapshotOrder fails when a snapshot row's commit time is later than that of a change after it
// to the same row (a backwards validity window in the history), and counts the rows read by a
// snapshot and changed afterwards.
func snapshotOrder(t *testing.T, evs []event) (changedAfter int) {
	t.Helper()
	read := map[string]float64{}
	for _, e := range evs {
		if e.v == nil {
			continue
		}
		ts := e.source()["ts_us"].(float64)
		if e.op() == "r" {
			read[e.key] = ts
			continue
		}
		if r, ok := read[e.key]; ok {
			if ts < r {
				t.Errorf("row %s: snapshot row at %.0f us, the change after it committed at %.0f us: backwards window", e.key, r, ts)
			}
			changedAfter++
			delete(read, e.key)
		}
	}
	return changedAfter
}

func (h *harness) items() map[string]string {
	h.t.Helper()
	rows, err := h.db.Pool.Query(context.Background(), "SELECT grp, id, v FROM items")
	if err != nil {
		h.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var g, id, v int64
		if err := rows.Scan(&g, &id, &v); err != nil {
			h.t.Fatal(err)
		}
		out[fmt.Sprintf(`{"grp":%d,"id":%d}`, g, id)] = fmt.Sprintf("%d/%d=%d", g, id, v)
	}
	return out
}

// TestLostDestinationIsSnapshottedWhileWritesStream is `make clean` under load: the slot lives on,
// the lake (manifest) and Kafka are new. Every table is snapshotted incrementally while writers
// update, insert and delete rows; it races until a chunk's row changed within its window (the
// streamed event must win) and the replayed topic must equal the table.
func TestLostDestinationIsSnapshottedWhileWritesStream(t *testing.T) {
	h := newHarness(t)
	h.withItems(600)
	var writes atomic.Int64
	cancelWriters := h.writers(2, 650, &writes)
	first := newManifests()
	firstMetrics := &capture.Metrics{}
	h.cfg.Manifest, h.cfg.Metrics = first, firstMetrics
	stop := h.start(nil)
	waitFor(t, "initial snapshot recorded", 30*time.Second, func() bool {
		m := first.manifest(t)
		return m != nil && len(m.Snapshots) == len(h.cfg.Tables)
	})
	waitFor(t, "changes streamed after the initial snapshot", 30*time.Second, func() bool { return firstMetrics.Events.Load() > 800 })
	if err := stop(); err != nil {
		t.Fatalf("first run: %v", err)
	}
	h.exec(`UPDATE items SET v = v + 1 WHERE id % 10 = 0`) // while nothing captures
	if n := snapshotOrder(t, h.drain("fin.public.items")); n == 0 {
		t.Errorf("no row read by the initial snapshot was changed while writes streamed")
	}

	// The lake is lost: a new, empty destination; the slot is kept.
	h.newKafka()
	lake := newManifests()
	h.cfg.Manifest, h.cfg.ChunkSize = lake, 25
	metrics := &capture.Metrics{}
	h.cfg.Metrics = metrics
	stop = h.start(nil)
	const tries = 20
	attempt := 0
	for ; attempt < tries; attempt++ {
		want := int64(len(h.cfg.Tables) + attempt)
		waitFor(t, "snapshot completed", 60*time.Second, func() bool { return metrics.SnapshotsCompleted.Load() >= want })
		if metrics.SnapshotDropped.Load() > 0 {
			break
		}
		// Not hit yet: ask again through the signal table, as an operator would.
		h.exec(`INSERT INTO debezium_signal (id, type, data) VALUES ($1, 'execute-snapshot', '{"data-collections": ["public.items"], "type": "incremental"}')`, fmt.Sprintf("race-%d", attempt))
	}
	cancelWriters()
	// A window held for a writer's transaction open across its snapshot is written once it ended.
	waitFor(t, "snapshot windows written", 30*time.Second, func() bool { return metrics.WindowsHeld.Load() == 0 })
	if metrics.SnapshotDropped.Load() == 0 {
		t.Fatalf("no chunk row changed within its window in %d snapshots (%d writes): the race was never hit", tries, writes.Load())
	}
	t.Logf("snapshots: %d, rows dropped for a newer streamed event: %d, writes: %d", attempt+1, metrics.SnapshotDropped.Load(), writes.Load())

	m := lake.manifest(t)
	for _, tb := range h.cfg.Tables {
		if rec, ok := m.Snapshots[tb]; !ok || rec.Kind != "incremental" {
			t.Errorf("manifest of the new destination: %s recorded as %+v, want an incremental snapshot", tb, rec)
		}
	}
	// Caught up: a last change is delivered, and everything before it.
	h.exec(`UPDATE items SET v = v + 1000 WHERE id = (SELECT min(id) FROM items)`)
	var end uint64
	if err := h.db.Pool.QueryRow(context.Background(), "SELECT pg_current_wal_lsn() - '0/0'").Scan(&end); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "capture caught up", 30*time.Second, func() bool { return metrics.ConfirmedLSN.Load() >= end })
	evs := h.drain("fin.public.items")
	incremental := 0
	for _, e := range evs {
		if e.op() == "r" {
			src := e.source()
			if src["snapshot"] != "incremental" || e.v["before"] != nil || src["lsn"] == nil || src["txId"] == nil {
				t.Fatalf("incremental snapshot event not in Debezium's shape: %s", e.raw)
			}
			incremental++
		}
	}
	if n := snapshotOrder(t, evs); n == 0 {
		t.Errorf("no row read by the incremental snapshot was changed afterwards")
	}
	got, want := replay(t, evs), h.items()
	if len(got) != len(want) {
		t.Errorf("replayed topic has %d rows, the table %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("row %s: replayed %q, table %q", k, got[k], v)
		}
	}
	if incremental == 0 {
		t.Errorf("no incremental snapshot rows in the new destination")
	}
	// Rows deleted while the windows were open were streamed: the windows end no row that exists.
	windows := snapshotWindows(t, lake, "items")
	if len(windows) != attempt+1 {
		t.Errorf("the lake holds %d windows of items after %d snapshots", len(windows), attempt+1)
	}
	withWindows, _ := replayWindows(t, evs, windows)
	for k, v := range want {
		if withWindows[k] != v {
			t.Errorf("row %s: replayed with the snapshot windows %q, table %q", k, withWindows[k], v)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("capture: %v", err)
	}
}

// recorder passes records on, remembering the keys of incremental snapshot rows; once swallow is
// set it takes records and never answers, like a capture killed before Kafka acknowledged. With
// killAfter set it swallows from that many incremental rows on by itself, so the kill lands
// inside the snapshot however fast the machine reads it.
type recorder struct {
	next      capture.Producer
	killAfter int64
	passed    atomic.Int64
	swallow   atomic.Bool
	mu        sync.Mutex
	keys      map[string]bool
	taken     atomic.Int64
}

func (r *recorder) Produce(ctx context.Context, rec *kgo.Record, promise func(*kgo.Record, error)) {
	if r.swallow.Load() {
		r.taken.Add(1)
		return
	}
	if strings.Contains(string(rec.Value), `"snapshot":"incremental"`) {
		if r.killAfter > 0 && r.passed.Add(1) > r.killAfter {
			r.swallow.Store(true)
			r.taken.Add(1)
			return
		}
		r.mu.Lock()
		r.keys[string(rec.Key)] = true
		r.mu.Unlock()
	}
	r.next.Produce(ctx, rec, promise)
}

func TestIncrementalSnapshotResumesAfterKill(t *testing.T) {
	h := newHarness(t)
	const rows = 3000
	h.withItems(rows)
	store := newManifests()
	h.cfg.Manifest, h.cfg.ChunkSize = store, 40
	cl, err := kafka.NewClient(h.seeds)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Killed in the middle of the snapshot: after ten chunks' rows, nothing more is acknowledged.
	first := &recorder{next: cl, keys: map[string]bool{}, killAfter: 10 * 40}
	stop := h.start(first)
	waitFor(t, "initial snapshot recorded", 30*time.Second, func() bool {
		m := store.manifest(t)
		return m != nil && len(m.Snapshots) == len(h.cfg.Tables)
	})
	reqID, err := capture.RequestSnapshot(context.Background(), h.db.Pool, "public.debezium_signal", []string{"public.items"})
	if err != nil {
		t.Fatal(err)
	}
	var pos *capture.IncrementalPosition
	waitFor(t, "a delivered chunk position in the manifest", 30*time.Second, func() bool {
		m := store.manifest(t)
		pos = m.Incremental
		return pos != nil && len(pos.LastKey) == 2
	})
	waitFor(t, "records taken after the kill point", 30*time.Second, func() bool { return first.taken.Load() >= 10 })
	if err := stop(); err != nil && !strings.Contains(err.Error(), "deliver") {
		t.Fatalf("killed run: %v", err)
	}
	killed := store.manifest(t).Incremental
	if killed == nil || killed.ID != reqID {
		t.Fatalf("manifest lost the running snapshot at the kill: %+v", killed)
	}
	if killed.Window == nil || killed.Window.OpenLSN == "" || killed.Window.Rows == 0 {
		t.Fatalf("manifest lost the running snapshot's window at the kill: %+v", killed.Window)
	}
	if ws := snapshotWindows(t, store, "items"); len(ws) != 0 {
		t.Fatalf("the lake holds %d windows of items before the snapshot completed, want the initial snapshot's none", len(ws))
	}

	metrics := &capture.Metrics{}
	h.cfg.Metrics = metrics
	second := &recorder{next: cl, keys: map[string]bool{}}
	stop = h.start(second)
	waitFor(t, "resumed snapshot completed", 60*time.Second, func() bool {
		return metrics.SnapshotsCompleted.Load() >= 1 && metrics.WindowsHeld.Load() == 0
	})
	if err := stop(); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if m := store.manifest(t); m.Incremental != nil || m.Snapshots["public.items"].Kind != "incremental" {
		t.Errorf("after the resumed snapshot the manifest holds %+v and items %+v", m.Incremental, m.Snapshots["public.items"])
	}
	// One window, opened by the killed run: the resumed run's rows alone do not cover the table.
	ws := snapshotWindows(t, store, "items")
	if len(ws) != 1 {
		t.Fatalf("the lake holds %d windows of items, want 1: %+v", len(ws), ws)
	}
	var w struct {
		Rows    int64  `json:"rows"`
		OpenLSN int64  `json:"open_lsn"`
		GapFrom *int64 `json:"gap_from_lsn"`
	}
	if err := json.Unmarshal([]byte(*ws[0].After), &w); err != nil {
		t.Fatal(err)
	}
	if w.GapFrom != nil {
		t.Errorf("window %s: a requested snapshot of a destination that missed nothing names a gap", *ws[0].After)
	}
	if open, _ := pglogrepl.ParseLSN(killed.Window.OpenLSN); w.OpenLSN != ws[0].Offset || w.OpenLSN > int64(open) || w.Rows != rows {
		t.Errorf("window %+v (offset %d), want opened at or before the killed run's %s, %d rows", w, ws[0].Offset, killed.Window.OpenLSN, rows)
	}
	if n := len(second.keys); n >= rows {
		t.Errorf("the resumed run re-read %d rows of %d: it started over instead of resuming", n, rows)
	}
	for k := range h.items() {
		if !first.keys[k] && !second.keys[k] {
			t.Fatalf("row %s never emitted by the killed run nor the resumed one", k)
		}
	}
	t.Logf("killed after %d rows (position %v); resumed run read %d", len(first.keys), killed.LastKey, len(second.keys))
}

func TestSignalRowTriggersSnapshotInBoundedChunks(t *testing.T) {
	h := newHarness(t)
	const rows = 2000
	h.withItems(rows)
	h.exec(`INSERT INTO customers (first_name, last_name, email) SELECT 'A', 'B', 'c' || g || '@example.com' FROM generate_series(1, 130) g`)
	metrics := &capture.Metrics{}
	h.cfg.Metrics, h.cfg.ChunkSize = metrics, 64
	stop := h.start(nil)
	h.consume("__debezium-heartbeat.fin", 1) // streaming
	if metrics.SnapshotRows.Load() != 0 {
		t.Fatalf("an incremental snapshot ran before any signal")
	}
	h.exec(`INSERT INTO debezium_signal (id, type, data) VALUES ('sig-1', 'execute-snapshot', '{"data-collections": ["public.items", "public.customers"], "type": "incremental"}')`)
	waitFor(t, "both tables snapshotted", 60*time.Second, func() bool { return metrics.SnapshotsCompleted.Load() == 2 })
	if got := metrics.SnapshotRows.Load(); got != rows+130 {
		t.Errorf("incremental snapshot emitted %d rows, want %d", got, rows+130)
	}
	if got := metrics.SnapshotChunkMax.Load(); got > 64 || got == 0 {
		t.Errorf("largest chunk held %d rows, want at most the chunk size 64 (whatever the table's size)", got)
	}
	if got := metrics.SnapshotHeldMax.Load(); got > capture.MaxPending || got == 0 {
		t.Errorf("%d chunks held at once, want at most %d (the memory bound: chunks held x chunk size)", got, capture.MaxPending)
	}
	if got, want := metrics.SnapshotChunks.Load(), int64((rows+63)/64+(130+63)/64); got != want {
		t.Errorf("%d chunks, want %d", got, want)
	}
	inc := 0
	for _, e := range h.consume("fin.public.customers", 2*130) { // initial snapshot, then the incremental one
		if e.op() != "r" {
			t.Fatalf("customers event: %s", e.raw)
		}
		if e.source()["snapshot"] == "incremental" {
			inc++
		}
	}
	if inc != 130 {
		t.Errorf("%d incremental customers events, want 130", inc)
	}
	var left int
	if err := h.db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM debezium_signal WHERE type <> 'execute-snapshot'").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d watermark rows left in the signal table", left)
	}
	if err := stop(); err != nil {
		t.Fatalf("capture: %v", err)
	}
}

func TestManifestFromAnotherSourceIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*capture.SourceID)
	}{
		{"another cluster", func(s *capture.SourceID) { s.SystemID = "7000000000000000001" }},
		{"another database", func(s *capture.SourceID) { s.Database = "elsewhere" }},
		{"another slot", func(s *capture.SourceID) { s.Slot = "other_slot" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			store := newManifests()
			h.cfg.Manifest = store
			stop := h.start(nil)
			waitFor(t, "manifest written", 30*time.Second, func() bool { return store.manifest(t) != nil })
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			m := store.manifest(t)
			tc.change(&m.Source)
			body, _ := json.Marshal(m)
			store.Write(context.Background(), capture.ManifestKey("fin"), body)

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := capture.Run(ctx, h.cfg, &blackhole{})
			if err == nil || !strings.Contains(err.Error(), "history from another source") {
				t.Fatalf("capture on a destination of another source: %v, want a refusal", err)
			}
			if after := store.manifest(t); after.Source != m.Source {
				t.Errorf("the refused capture rewrote the manifest's source: %+v", after.Source)
			}
		})
	}
}
