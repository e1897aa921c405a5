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
	h := newHarness(t)
	h.withItems(200)
	metrics := &capture.Metrics{}
	h.cfg.Metrics, h.cfg.ChunkSize = metrics, chunkSize

	ctx := context.Background()
	rows, err := h.db.Pool.Query(ctx, "SELECT grp, id FROM items ORDER BY grp, id")
	if err != nil {
		t.Fatal(err)
	}
	var keys [][2]int64
	for rows.Next() {
		var k [2]int64
		if err := rows.Scan(&k[0], &k[1]); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	rows.Close()
	jsonKey := func(k [2]int64) string { return fmt.Sprintf(`{"grp":%d,"id":%d}`, k[0], k[1]) }
	where := func(k [2]int64) string { return fmt.Sprintf("grp = %d AND id = %d", k[0], k[1]) }
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
	h.exec(`INSERT INTO debezium_signal (id, type, data) VALUES ('sig-1', 'execute-snapshot', '{"data-collections": ["public.items"]}')`)
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

	if got := replay(t, evs); !maps.Equal(got, want) {
		t.Errorf("the topic replayed in order differs from the table: %s", diff(got, want))
	}
	if got := replay(t, byPosition(evs)); !maps.Equal(got, want) {
		t.Errorf("the events ordered by source.lsn differ from the table: %s", diff(got, want))
	}
	reads := map[string]int{}
	for _, e := range evs {
		if e.v != nil && e.op() == "r" && e.source()["snapshot"] == "incremental" {
			reads[e.key]++
		}
	}
	for _, k := range [][2]int64{updated2, deleted2} {
		if reads[jsonKey(k)] != 0 {
			t.Errorf("row %s changed inside chunk 2's window was emitted by the snapshot (%d reads), want it dropped", jsonKey(k), reads[jsonKey(k)])
		}
	}
	if reads[jsonKey(inFirst)] != 1 {
		t.Errorf("row %s of chunk 1, changed after its window, has %d snapshot reads, want 1", jsonKey(inFirst), reads[jsonKey(inFirst)])
	}
	if got := metrics.SnapshotDropped.Load(); got != 2 {
		t.Errorf("%d keys dropped from chunks, want 2 (chunk 2's update and delete)", got)
	}
	if got, want := metrics.SnapshotRows.Load(), int64(len(keys)-2); got != want {
		t.Errorf("snapshot emitted %d rows, want %d (every row but the two dropped)", got, want)
	}
	// Chunk 1's row comes first, as read, then the update after its window.
	var seq []string
	for _, e := range evs {
		initial := e.v != nil && e.op() == "r" && e.source()["snapshot"] != "incremental"
		if e.key == jsonKey(inFirst) && e.v != nil && !initial {
			seq = append(seq, fmt.Sprintf("%s:%v", e.op(), e.image("after")["v"]))
		}
	}
	if !slices.Equal(seq, []string{"r:0", "u:43"}) {
		t.Errorf("row %s of chunk 1: events %v, want [r:0 u:43]", jsonKey(inFirst), seq)
	}
	seq = nil
	for _, e := range evs {
		if initial := e.v != nil && e.op() == "r" && e.source()["snapshot"] != "incremental"; e.key == jsonKey(updated3) && e.v != nil && !initial {
			seq = append(seq, fmt.Sprintf("%s:%v", e.op(), e.image("after")["v"]))
		}
	}
	if !slices.Equal(seq, []string{"u:44", "r:44"}) {
		t.Errorf("row %s of chunk 3, updated before its window: events %v, want [u:44 r:44]", jsonKey(updated3), seq)
	}
}
