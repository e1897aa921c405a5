package capture_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/fin-orchestrator/fin-orchestrator/shared/capture"
)

// Chunks are pipelined: chunk k+1 is read while chunk k still waits for its high watermark to
// come back through the stream. The hook holds the stream right there (chunk 2 read, chunk 1's
// high watermark written but not yet streamed back) and changes rows of both chunks: an update
// and a delete in chunk 2, inside its window, must drop those keys from it; an update in chunk 1,
// after its window, must not drop anything from chunk 1, whose row is emitted as read and then
// followed by the update. The topic, in order and by position, must end in the table's rows.
func TestChunkChangedWhileThePreviousWaits(t *testing.T) {
	const chunkSize = 16
	h, metrics, keys := chunkHarness(t, 200, chunkSize)
	ctx := context.Background()
	jsonKey, where := itemJSONKey, itemWhere
	inFirst, updated2, deleted2, updated3 := keys[3], keys[chunkSize+4], keys[chunkSize+9], keys[2*chunkSize+5]
	afterChunk := func(n int) []string { k := keys[n*chunkSize-1]; return []string{fmt.Sprint(k[0]), fmt.Sprint(k[1])} }

	var fired atomic.Bool
	var changedAt string // past the changes' records: the stream has met them once it reads past it
	var emittedBefore atomic.Int64
	hookErr := make(chan error, 1)
	defer capture.SetChunkReadHook(func(table string, after []string) func() {
		// Chunk 2 is the one read after the first chunk's last key.
		if table != "public.items" || fired.Load() || !slices.Equal(after, afterChunk(1)) {
			return nil
		}
		fired.Store(true)
		return func() {
			emittedBefore.Store(metrics.SnapshotChunks.Load())
			// Chunk 2 is read while chunk 1's high watermark commits (readsEarly): the changes
			// wait until it has, or chunk 1's window would still be open for them.
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				var n int
				err := h.db.Pool.QueryRow(ctx, "SELECT count(*) FROM debezium_signal WHERE type = 'snapshot-window-close'").Scan(&n)
				if err == nil && n >= 1 {
					break
				}
				if time.Now().After(deadline) {
					hookErr <- fmt.Errorf("chunk 1's high watermark not committed in 10 s (%v)", err)
					return
				}
			}
			hookErr <- pgx.BeginFunc(ctx, h.db.Pool, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, "UPDATE items SET v = 42 WHERE "+where(updated2)+"; DELETE FROM items WHERE "+where(deleted2)+
					"; UPDATE items SET v = 43 WHERE "+where(inFirst)+"; UPDATE items SET v = 44 WHERE "+where(updated3))
				if err != nil {
					return err
				}
				return tx.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&changedAt)
			})
		}
	})()

	// The same transaction updated a row of chunk 3, before chunk 3's low watermark: chunk 3's read
	// sees the new value, and holds its rows until the stream has met that update. The stream must
	// not wait for the read to do so: it keeps the key (the read's snapshot, unknown yet, decides),
	// and the read, which saw the update, keeps the row.
	var readingFired atomic.Bool
	readingErr := make(chan error, 1)
	defer capture.SetChunkReadingHook(func(table string, after []string) {
		if table != "public.items" || readingFired.Load() || !slices.Equal(after, afterChunk(2)) {
			return
		}
		readingFired.Store(true)
		want, err := pglogrepl.ParseLSN(changedAt)
		if err != nil {
			readingErr <- fmt.Errorf("the changes' position %q: %w", changedAt, err)
			return
		}
		for deadline := time.Now().Add(10 * time.Second); metrics.ReceivedLSN.Load() < uint64(want); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				readingErr <- fmt.Errorf("the stream did not reach the changes' commit (%s) in 10 s while chunk 3 was being read: it waits for the read", changedAt)
				return
			}
		}
		readingErr <- nil
	})()

	stop := h.start(nil)
	h.consume("__debezium-heartbeat.fin", 1) // streaming
	h.exec(snapshotItems)
	waitFor(t, "snapshot completed", 30*time.Second, func() bool { return metrics.SnapshotsCompleted.Load() == 1 })
	if !fired.Load() {
		t.Fatal("the hook never saw chunk 2 read while chunk 1 waited: the interleaving did not happen")
	}
	if err := <-hookErr; err != nil {
		t.Fatalf("changes made while chunk 1 waited: %v", err)
	}
	if !readingFired.Load() {
		t.Fatal("the hook never saw chunk 3 being read")
	}
	if err := <-readingErr; err != nil {
		t.Fatal(err)
	}
	if n := emittedBefore.Load(); n != 0 {
		t.Fatalf("%d chunks emitted when chunk 2 was read: chunk 1 was not waiting", n)
	}
	want, evs := h.itemsDelivered()
	if err := stop(); err != nil {
		t.Fatalf("capture: %v", err)
	}

	replaysToTable(t, evs, want)
	reads := droppedFromChunk2(t, metrics, evs, len(keys), "changed inside chunk 2's window", updated2, deleted2)
	if reads[jsonKey(inFirst)] != 1 {
		t.Errorf("row %s of chunk 1, changed after its window, has %d snapshot reads, want 1", jsonKey(inFirst), reads[jsonKey(inFirst)])
	}
	// Chunk 1's row comes first, as read, then the update after its window.
	if seq := sinceInitial(evs, inFirst); !slices.Equal(seq, []string{"r:0", "u:43"}) {
		t.Errorf("row %s of chunk 1: events %v, want [r:0 u:43]", jsonKey(inFirst), seq)
	}
	if seq := sinceInitial(evs, updated3); !slices.Equal(seq, []string{"u:44", "r:44"}) {
		t.Errorf("row %s of chunk 3, updated before its window: events %v, want [u:44 r:44]", jsonKey(updated3), seq)
	}
}

// A chunk after a table's first is read while its low watermark commits, not after it
// (readsEarly). The hooks force the case that makes this delicate: chunk 2's read takes its
// snapshot, then a transaction updates one of its rows and deletes another and commits, and only
// then is chunk 2's low watermark written. That transaction sits before the window in the log,
// yet the read did not see it: the stream must drop both keys from chunk 2 by the read's
// snapshot, or the chunk's old rows would follow the changes in the topic and stay current.
func TestChunkReadBeforeItsLowWatermark(t *testing.T) {
	const chunkSize = 16
	h, metrics, keys := chunkHarness(t, 120, chunkSize)
	ctx := context.Background()
	jsonKey, where := itemJSONKey, itemWhere
	updated, deleted := keys[chunkSize+2], keys[chunkSize+7]
	afterFirst := []string{fmt.Sprint(keys[chunkSize-1][0]), fmt.Sprint(keys[chunkSize-1][1])}
	isChunk2 := func(table string, after []string) bool {
		return table == "public.items" && slices.Equal(after, afterFirst)
	}

	var early, changed atomic.Bool
	var changeLSN atomic.Uint64
	committed := make(chan error, 1)
	defer capture.SetLowWatermarkHook(func(table string, after []string) {
		if !isChunk2(table, after) || early.Swap(true) {
			return
		}
		// The read runs; its low watermark waits for the change made after the read's snapshot.
		select {
		case err := <-committed:
			if err != nil {
				t.Errorf("the change made during chunk 2's read: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("chunk 2's read never reached its hook")
		}
	})()
	defer capture.SetChunkReadingHook(func(table string, after []string) {
		if !isChunk2(table, after) || changed.Swap(true) {
			return
		}
		committed <- pgx.BeginFunc(ctx, h.db.Pool, func(tx pgx.Tx) error {
			var lsn string
			if err := tx.QueryRow(ctx, "UPDATE items SET v = 77 WHERE "+where(updated)+" RETURNING pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
				return err
			}
			at, err := pglogrepl.ParseLSN(lsn)
			changeLSN.Store(uint64(at))
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, "DELETE FROM items WHERE "+where(deleted))
			return err
		})
	})()

	stop := h.start(nil)
	h.consume("__debezium-heartbeat.fin", 1) // streaming
	h.exec(snapshotItems)
	waitFor(t, "snapshot completed", 30*time.Second, func() bool { return metrics.SnapshotsCompleted.Load() == 1 })
	if !early.Load() || !changed.Load() {
		t.Fatalf("chunk 2 read before its low watermark: %v, changed during its read: %v; the interleaving did not happen", early.Load(), changed.Load())
	}
	want, evs := h.itemsDelivered()
	if err := stop(); err != nil {
		t.Fatalf("capture: %v", err)
	}

	replaysToTable(t, evs, want)
	var chunk2LSN float64
	for _, e := range evs {
		if incrementalRead(e) && e.key == jsonKey(keys[chunkSize]) {
			chunk2LSN, _ = e.source()["lsn"].(float64)
		}
	}
	// The read took its position before the change: the interleaving is the one meant.
	if chunk2LSN == 0 || uint64(chunk2LSN) >= changeLSN.Load() {
		t.Errorf("chunk 2's rows sit at %v, not before the change made during its read (%s)", chunk2LSN, pglogrepl.LSN(changeLSN.Load()))
	}
	droppedFromChunk2(t, metrics, evs, len(keys), "changed after chunk 2's read and before its low watermark", updated, deleted)
}

// Reads never wait for an earlier chunk's high watermark to come back through the stream, only
// for the chunks held (maxPending, m below). The hook holds the slot's messages back from the
// moment chunk 2 is queued, before the stream can have met chunk 1's high watermark: chunks 2 to
// m are read and their watermarks written meanwhile, until m chunks are held and none has been
// emitted. Then one transaction updates a row of each of chunks 1 to m-1 (their windows closed
// before it: emitted as read, then updated), deletes a row of chunk m (its window open: dropped)
// and updates a row of chunk m+1 (read later: it reads the new value), and the stream is let go.
// Chunk m+1 is then queued inside chunk 1's high watermark transaction, before chunk 1's rows are
// emitted (closeWindow).
func TestChunksReadWhileEarlierOnesWaitForTheStream(t *testing.T) {
	const chunkSize, m = 16, capture.MaxPending
	h, metrics, keys := chunkHarness(t, 200, chunkSize)
	ctx := context.Background()
	jsonKey, where := itemJSONKey, itemWhere
	after := func(n int) []string { k := keys[n*chunkSize-1]; return []string{fmt.Sprint(k[0]), fmt.Sprint(k[1])} }
	inChunk := func(n, i int) [2]int64 { return keys[(n-1)*chunkSize+i] }
	var updated [][2]int64 // a row of each of chunks 1 to m-1, then one of chunk m+1
	for n := 1; n < m; n++ {
		updated = append(updated, inChunk(n, 3+n))
	}
	updated = append(updated, inChunk(m+1, 2))
	deleted := inChunk(m, 9)

	var hold atomic.Bool
	defer capture.SetStreamHoldHook(hold.Load)()
	defer capture.SetChunkReadHook(func(table string, from []string) func() {
		if table == "public.items" && slices.Equal(from, after(1)) {
			hold.Store(true) // chunk 2 queued: the stream has not met chunk 1's high watermark yet
		}
		return nil
	})()
	lastRead := make(chan struct{}, 1)
	defer capture.SetChunkReadingHook(func(table string, from []string) {
		if table == "public.items" && slices.Equal(from, after(m-1)) {
			lastRead <- struct{}{}
		}
	})()

	stop := h.start(nil)
	h.consume("__debezium-heartbeat.fin", 1) // streaming
	h.exec(`INSERT INTO debezium_signal (id, type, data) VALUES ('sig-1', 'execute-snapshot', '{"data-collections": ["public.items"]}')`)
	select {
	case <-lastRead:
	case <-time.After(30 * time.Second):
		t.Fatalf("chunk %d was not read while the stream was held (chunks held at most %d, emitted %d): reads wait for the stream",
			m, metrics.SnapshotHeldMax.Load(), metrics.SnapshotChunks.Load())
	}
	waitFor(t, "chunks held", 10*time.Second, func() bool { return metrics.SnapshotHeldMax.Load() == m })
	// Chunk m is read while its low watermark commits, in the same transaction as chunk m-1's
	// high watermark (readsEarly): its read and its place in the pending queue can come first,
	// so the changes below wait until that high watermark is written, or chunk m-1's window would
	// still be open for them.
	waitFor(t, "chunk m-1's high watermark", 10*time.Second, func() bool {
		var n int
		err := h.db.Pool.QueryRow(ctx, "SELECT count(*) FROM debezium_signal WHERE type = 'snapshot-window-close'").Scan(&n)
		return err == nil && n >= m-1
	})
	if !hold.Load() || metrics.SnapshotChunks.Load() != 0 {
		t.Fatalf("held %v, %d chunks emitted: the interleaving did not happen", hold.Load(), metrics.SnapshotChunks.Load())
	}
	err := pgx.BeginFunc(ctx, h.db.Pool, func(tx pgx.Tx) error {
		for i, k := range updated {
			if _, err := tx.Exec(ctx, fmt.Sprintf("UPDATE items SET v = %d WHERE %s", 51+i, where(k))); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, "DELETE FROM items WHERE "+where(deleted))
		return err
	})
	if err != nil {
		t.Fatalf("changes while the stream was held: %v", err)
	}
	time.Sleep(100 * time.Millisecond) // the held pipeline must not move past its bound meanwhile
	if got := metrics.SnapshotHeldMax.Load(); got != m {
		t.Fatalf("%d chunks held, want at most %d", got, m)
	}
	hold.Store(false)
	waitFor(t, "snapshot completed", 30*time.Second, func() bool { return metrics.SnapshotsCompleted.Load() == 1 })
	want, evs := h.itemsDelivered()
	if err := stop(); err != nil {
		t.Fatalf("capture: %v", err)
	}

	replaysToTable(t, evs, want)
	seqs := map[string][]string{}
	for _, e := range evs {
		if initial := e.v != nil && e.op() == "r" && e.source()["snapshot"] != "incremental"; e.v != nil && !initial {
			seqs[e.key] = append(seqs[e.key], fmt.Sprintf("%s:%v", e.op(), e.image("after")["v"]))
		}
	}
	type rowWant struct {
		name string
		key  [2]int64
		want []string
	}
	var tests []rowWant
	for i, k := range updated[:m-1] {
		tests = append(tests, rowWant{fmt.Sprintf("chunk %d, changed after its window", i+1), k, []string{"r:0", fmt.Sprintf("u:%d", 51+i)}})
	}
	last := fmt.Sprintf("%d", 51+m-1)
	tests = append(tests, rowWant{fmt.Sprintf("chunk %d, deleted in its window", m), deleted, []string{"d:<nil>"}},
		rowWant{fmt.Sprintf("chunk %d, changed before its read", m+1), updated[m-1], []string{"u:" + last, "r:" + last}})
	for _, tt := range tests {
		if got := seqs[jsonKey(tt.key)]; !slices.Equal(got, tt.want) {
			t.Errorf("%s: events %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := metrics.SnapshotDropped.Load(); got != 1 {
		t.Errorf("%d keys dropped from chunks, want 1 (chunk %d's delete)", got, m)
	}
	if got, want := metrics.SnapshotRows.Load(), int64(len(keys)-1); got != want {
		t.Errorf("snapshot emitted %d rows, want %d (every row but the one dropped)", got, want)
	}
}

// chunkHarness is a harness with n items, read in chunks of chunkSize, its metrics and the
// items' keys.
func chunkHarness(t *testing.T, n, chunkSize int) (*harness, *capture.Metrics, [][2]int64) {
	h := newHarness(t)
	h.withItems(n)
	metrics := &capture.Metrics{}
	h.cfg.Metrics, h.cfg.ChunkSize = metrics, chunkSize
	return h, metrics, h.itemKeys()
}

// replaysToTable checks that the events, replayed in topic order and by source.lsn, leave the
// table's rows (want).
func replaysToTable(t *testing.T, evs []event, want map[string]string) {
	t.Helper()
	if got := replay(t, evs); !maps.Equal(got, want) {
		t.Errorf("the topic replayed in order differs from the table: %s", diff(got, want))
	}
	if got := replay(t, byPosition(evs)); !maps.Equal(got, want) {
		t.Errorf("the events ordered by source.lsn differ from the table: %s", diff(got, want))
	}
}

// itemKeys are the items' keys (grp, id) in key order, as chunks read them.
func (h *harness) itemKeys() [][2]int64 {
	h.t.Helper()
	rows, err := h.db.Pool.Query(context.Background(), "SELECT grp, id FROM items ORDER BY grp, id")
	if err != nil {
		h.t.Fatal(err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]int64, error) {
		var k [2]int64
		return k, r.Scan(&k[0], &k[1])
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return keys
}

// itemJSONKey is an item's record key; itemWhere selects it in SQL.
func itemJSONKey(k [2]int64) string { return fmt.Sprintf(`{"grp":%d,"id":%d}`, k[0], k[1]) }

func itemWhere(k [2]int64) string { return fmt.Sprintf("grp = %d AND id = %d", k[0], k[1]) }

// sinceInitial lists an item's events after the initial snapshot's read, as op:v (tombstones
// left out).
func sinceInitial(evs []event, k [2]int64) []string {
	var seq []string
	for _, e := range evs {
		initial := e.v != nil && e.op() == "r" && e.source()["snapshot"] != "incremental"
		if e.key == itemJSONKey(k) && e.v != nil && !initial {
			seq = append(seq, fmt.Sprintf("%s:%v", e.op(), e.image("after")["v"]))
		}
	}
	return seq
}

// incrementalRead tells a row emitted by an incremental snapshot's chunk.
func incrementalRead(e event) bool {
	return e.v != nil && e.op() == "r" && e.source()["snapshot"] == "incremental"
}

// droppedFromChunk2 checks that the snapshot of a table of rows rows dropped the keys of chunk 2
// that were changed as why says, and emitted every other row; it returns each key's count of
// incremental snapshot reads.
func droppedFromChunk2(t *testing.T, metrics *capture.Metrics, evs []event, rows int, why string, dropped ...[2]int64) map[string]int {
	t.Helper()
	reads := map[string]int{}
	for _, e := range evs {
		if incrementalRead(e) {
			reads[e.key]++
		}
	}
	for _, k := range dropped {
		if n := reads[itemJSONKey(k)]; n != 0 {
			t.Errorf("row %s %s was emitted by the snapshot (%d reads), want it dropped", itemJSONKey(k), why, n)
		}
	}
	if got := metrics.SnapshotDropped.Load(); got != int64(len(dropped)) {
		t.Errorf("%d keys dropped from chunks, want %d (chunk 2's update and delete)", got, len(dropped))
	}
	if got, want := metrics.SnapshotRows.Load(), int64(rows-len(dropped)); got != want {
		t.Errorf("snapshot emitted %d rows, want %d (every row but the %d dropped)", got, want, len(dropped))
	}
	return reads
}

// Streamed transactions never wait for a chunk read, not even when the chunk being read is the
// only one held (every earlier chunk emitted). The hook holds chunk 4's read once chunks 1 to 3
// are out and commits two transactions meanwhile: the stream must reach the second while the
// read is still held. Were the first one's commit to wait for the read, the stream would run in
// bursts between reads during a snapshot, and its changes would reach Kafka a read late.
func TestStreamDoesNotWaitForTheOnlyChunkRead(t *testing.T) {
	const chunkSize, held = 16, 4
	h, metrics, keys := chunkHarness(t, 200, chunkSize)
	ctx := context.Background()
	after := func(n int) []string { k := keys[n*chunkSize-1]; return []string{fmt.Sprint(k[0]), fmt.Sprint(k[1])} }

	var fired atomic.Bool
	readErr := make(chan error, 1)
	defer capture.SetChunkReadingHook(func(table string, from []string) {
		if table != "public.items" || fired.Load() || !slices.Equal(from, after(held-1)) {
			return
		}
		fired.Store(true)
		readErr <- func() error {
			// Chunk held-1's high watermark comes back through the stream while this read is held:
			// then this chunk is the only one held.
			for deadline := time.Now().Add(10 * time.Second); metrics.SnapshotChunks.Load() < held-1; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					return fmt.Errorf("%d chunks emitted in 10 s, want %d before chunk %d's read ends", metrics.SnapshotChunks.Load(), held-1, held)
				}
			}
			var second pglogrepl.LSN
			for i, k := range []([2]int64){keys[1], keys[2]} { // rows of chunk 1, emitted already
				var at string
				err := pgx.BeginFunc(ctx, h.db.Pool, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, fmt.Sprintf("UPDATE items SET v = %d WHERE %s", 61+i, itemWhere(k))); err != nil {
						return err
					}
					return tx.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&at)
				})
				if err != nil {
					return err
				}
				if second, err = pglogrepl.ParseLSN(at); err != nil {
					return err
				}
			}
			for deadline := time.Now().Add(5 * time.Second); metrics.ReceivedLSN.Load() < uint64(second); time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					return fmt.Errorf("the stream did not reach the second transaction (%s) in 5 s while chunk %d, the only one held, was being read: a commit waits for the read", second, held)
				}
			}
			return nil
		}()
	})()

	stop := h.start(nil)
	h.consume("__debezium-heartbeat.fin", 1) // streaming
	h.exec(snapshotItems)
	waitFor(t, "snapshot completed", 30*time.Second, func() bool { return metrics.SnapshotsCompleted.Load() == 1 })
	if !fired.Load() {
		t.Fatalf("chunk %d was never read", held)
	}
	if err := <-readErr; err != nil {
		t.Fatal(err)
	}
	want, evs := h.itemsDelivered()
	if err := stop(); err != nil {
		t.Fatalf("capture: %v", err)
	}
	replaysToTable(t, evs, want)
	for i, k := range []([2]int64){keys[1], keys[2]} {
		if seq := sinceInitial(evs, k); !slices.Equal(seq, []string{"r:0", fmt.Sprintf("u:%d", 61+i)}) {
			t.Errorf("row %s of chunk 1, updated while chunk %d was read: events %v, want [r:0 u:%d]", itemJSONKey(k), held, seq, 61+i)
		}
	}
}

// A watermark transaction's commit (a WAL flush) does not hold the stream: the chunk whose high
// watermark came back is emitted while the next watermarks wait. The stream reads nothing from
// the slot from chunk 2's low watermark on (chunk 1's high one is written with it), so chunk 1
// is not emitted yet when chunk 3's low watermark (with chunk 2's high one) is about to be
// written; there the hook waits for chunk 1's high watermark to be committed, locks the signal
// table against the next write and lets the stream go. When the stream waited for the write,
// nothing was emitted while the lock was held.
func TestEmissionGoesOnWhileAWatermarkCommits(t *testing.T) {
	const chunkSize = 16
	h, metrics, keys := chunkHarness(t, 120, chunkSize)
	ctx := context.Background()
	after := func(n int) []string { k := keys[n*chunkSize-1]; return []string{fmt.Sprint(k[0]), fmt.Sprint(k[1])} }
	var holding, locked atomic.Bool
	released := make(chan struct{})
	lockDone := make(chan error, 1)
	defer capture.SetStreamHoldHook(func() bool { return holding.Load() && !locked.Load() })()
	defer capture.SetLowWatermarkHook(func(table string, from []string) {
		if table != "public.items" {
			return
		}
		if slices.Equal(from, after(1)) {
			holding.Store(true)
		}
		if !slices.Equal(from, after(2)) || locked.Load() {
			return
		}
		if n := metrics.SnapshotRows.Load(); n > 0 {
			t.Errorf("%d rows emitted before chunk 3's low watermark: the stream was not held", n)
		}
		waitFor(t, "chunk 1's high watermark committed", 20*time.Second, func() bool {
			var n int
			err := h.db.Pool.QueryRow(ctx, "SELECT count(*) FROM public.debezium_signal WHERE type = 'snapshot-window-close'").Scan(&n)
			return err == nil && n > 0
		})
		held := make(chan error, 1)
		go func() {
			lockDone <- pgx.BeginFunc(ctx, h.db.Pool, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, "LOCK TABLE public.debezium_signal IN SHARE MODE")
				held <- err
				<-released
				return err
			})
		}()
		if err := <-held; err != nil {
			t.Errorf("lock the signal table: %v", err)
		}
		locked.Store(true)
	})()

	stop := h.start(nil)
	h.consume("__debezium-heartbeat.fin", 1) // streaming
	h.exec(snapshotItems)
	waitFor(t, "chunk 3's watermarks held", 30*time.Second, locked.Load)
	deadline := time.Now().Add(10 * time.Second)
	for metrics.SnapshotRows.Load() < chunkSize && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	emitted := metrics.SnapshotRows.Load()
	close(released)
	if err := <-lockDone; err != nil {
		t.Fatalf("the lock's transaction: %v", err)
	}
	if emitted < chunkSize {
		t.Errorf("%d rows emitted while the next watermarks waited for their commit, want chunk 1's %d", emitted, chunkSize)
	}
	waitFor(t, "snapshot completed", 30*time.Second, func() bool { return metrics.SnapshotsCompleted.Load() == 1 })
	want, evs := h.itemsDelivered()
	if err := stop(); err != nil {
		t.Fatalf("capture: %v", err)
	}
	replaysToTable(t, evs, want)
}
