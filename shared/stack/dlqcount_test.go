package stack

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// TestDLQCountListsOnlyWhenStale: the status's DLQ count lists dlq/ once and keeps it, lists
// again after a write of the stack's or once it is old, and never keeps a listing that a write
// overlapped.
func TestDLQCountListsOnlyWhenStale(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	var d dlqCount
	objects, lists := int64(2), 0
	var during func() // runs inside the next listing, once
	list := func(context.Context) (int64, error) {
		lists++
		n := objects
		if f := during; f != nil {
			during = nil
			f()
		}
		return n, nil
	}
	for _, step := range []struct {
		name      string
		before    func()
		after     time.Duration
		want      int64
		wantLists int
	}{
		{"first status lists", nil, 0, 2, 1},
		{"next status keeps it", nil, 10 * time.Second, 2, 1},
		{"a put under dlq/ makes it stale", func() { objects = 3; d.stale() }, 11 * time.Second, 3, 2},
		{"kept again", nil, 12 * time.Second, 3, 2},
		{"a write outside the stack shows within dlqRecount", func() { objects = 4 }, 11*time.Second + dlqRecount, 4, 3},
		{"a replay during a listing: listed again", func() {
			d.stale()
			during = func() { objects = 1; d.stale() }
		}, 11*time.Second + dlqRecount, 1, 5},
		{"the second listing was kept", nil, 12*time.Second + dlqRecount, 1, 5},
	} {
		if step.before != nil {
			step.before()
		}
		if got := d.get(ctx, at.Add(step.after), -1, list); got != step.want || lists != step.wantLists {
			t.Fatalf("%s: count %d after %d listings, want %d after %d", step.name, got, lists, step.want, step.wantLists)
		}
	}
	// The landing's puts: only one under dlq/ makes the count stale.
	put := dlqWatch{&putter{}, &d}
	for _, key := range []string{"bronze/customers/x.parquet", "dlq/fin.public.customers/x.json"} {
		before := lists
		put.PutObject(ctx, "lake", key, strings.NewReader("{}"), 2, minio.PutObjectOptions{})
		d.get(ctx, at.Add(12*time.Second+dlqRecount), 0, list)
		if relisted := lists > before; relisted != strings.HasPrefix(key, "dlq/") {
			t.Errorf("put %s: listed again %v", key, relisted)
		}
	}
	d.stale()
	if got := d.get(ctx, at, 7, func(context.Context) (int64, error) { return 0, errors.New("lake down") }); got != 7 {
		t.Errorf("lake unreachable: count %d, want the previous 7", got)
	}
}
