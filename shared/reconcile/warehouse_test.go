package reconcile

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockingWarehouse answers queries as the DuckDB warehouse does: each holds a read lock on the
// handle while it writes its answer, and a RAW snapshot (dbt's) takes the write lock. The first
// query lets a snapshot queue for the write lock before it writes, which is the interleaving that
// stalled the stack: Go's RWMutex makes a later reader wait behind a queued writer.
type lockingWarehouse struct {
	mu       sync.RWMutex
	rows     int
	once     sync.Once
	snapshot chan struct{} // closed when the queued snapshot has had its turn
}

func (w *lockingWarehouse) Query(ctx context.Context, query string, out io.Writer) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	w.once.Do(func() {
		go func() {
			w.mu.Lock()
			w.mu.Unlock()
			close(w.snapshot)
		}()
		// Wait until the snapshot is queued: TryRLock fails only while a writer waits.
		for w.mu.TryRLock() {
			w.mu.RUnlock()
			time.Sleep(time.Millisecond)
		}
	})
	if _, err := fmt.Fprintln(out, "k,v,c,c0"); err != nil {
		return err
	}
	for i := range w.rows {
		if _, err := fmt.Fprintf(out, "k%08d,1,0,\"\"\"x\"\"\"\n", i); err != nil {
			return err
		}
	}
	return nil
}

func TestOpenWarehouseBesideAWriter(t *testing.T) {
	tables := []table{
		{name: "customers", key: "k", columns: []column{{"email", "text"}}},
		{name: "accounts", key: "k", columns: []column{{"nickname", "text"}}},
	}
	wh := &lockingWarehouse{rows: 20000, snapshot: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type opened struct {
		rows  map[string]*warehouseRows
		close func()
		err   error
	}
	done := make(chan opened, 1)
	go func() {
		rows, closeAll, err := openWarehouse(ctx, wh, tables, nil)
		done <- opened{rows, closeAll, err}
	}()
	var o opened
	select {
	case o = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("openWarehouse stood still beside a snapshot waiting for the warehouse (a reader asked for the lock twice)")
	}
	if o.err != nil {
		t.Fatal(o.err)
	}
	defer o.close()
	select {
	case <-wh.snapshot:
	case <-time.After(5 * time.Second):
		t.Fatal("the snapshot never had its turn")
	}
	for _, tb := range tables {
		n := 0
		for {
			k, r, ok, err := o.rows[tb.name].next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if want := fmt.Sprintf("k%08d", n); k != want || r.values[0] != "x" {
				t.Fatalf("%s row %d: %s %q, want %s \"x\"", tb.name, n, k, strings.Join(r.values, ","), want)
			}
			n++
		}
		if n != wh.rows {
			t.Errorf("%s: read %d rows, want %d", tb.name, n, wh.rows)
		}
	}
}
