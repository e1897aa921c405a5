package stack

import (
	"context"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/fin-orchestrator/fin-orchestrator/shared/landing"
)

// dlqCount is the number of entries waiting under dlq/ in the lake, for the status: listed once
// and kept, not listed on every status. The stack's own writers of dlq/ (the landing's puts, a
// replay's removal) mark it stale when they have written, so the next status lists again and no
// status made after such a write shows the count from before it; a writer outside the stack (an
// object put through the S3 API) is seen within dlqRecount.
type dlqCount struct {
	mu     sync.Mutex
	n      int64
	listed time.Time // zero: stale
	gen    uint64    // bumped by every write, so a listing that raced one is not kept
}

// dlqRecount is how long a listing is kept when no write of the stack's marked it stale.
const dlqRecount = time.Minute

// dlqCountMax bounds a listing.
const dlqCountMax = 10_000

// stale says dlq/ was written: the kept count may be wrong.
func (d *dlqCount) stale() {
	d.mu.Lock()
	d.gen++
	d.listed = time.Time{}
	d.mu.Unlock()
}

// get returns the kept count, or lists dlq/ through list when it is stale or old. A listing that
// a write overlapped is listed again (a few times, then shown but not kept); prev stands when the
// lake cannot be listed.
func (d *dlqCount) get(ctx context.Context, now time.Time, prev int64, list func(context.Context) (int64, error)) int64 {
	for range 3 {
		d.mu.Lock()
		if !d.listed.IsZero() && now.Sub(d.listed) < dlqRecount {
			n := d.n
			d.mu.Unlock()
			return n
		}
		gen := d.gen
		d.mu.Unlock()
		n, err := list(ctx)
		if err != nil {
			return prev
		}
		d.mu.Lock()
		kept := d.gen == gen
		if kept {
			d.n, d.listed = n, now
		}
		d.mu.Unlock()
		if prev = n; kept {
			return n
		}
	}
	return prev
}

// listDLQ counts the objects under dlq/, up to dlqCountMax.
func (s *Stack) listDLQ(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var n int64
	for obj := range s.s3.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: "dlq/", Recursive: true}) {
		if obj.Err != nil {
			return 0, obj.Err
		}
		if n++; n == dlqCountMax {
			break
		}
	}
	return n, nil
}

// dlqWatch marks the DLQ count stale after each put under dlq/ (failed ones too: a put that
// timed out may have stored the object).
type dlqWatch struct {
	landing.ObjectPutter
	count *dlqCount
}

func (d dlqWatch) PutObject(ctx context.Context, bucket, key string, r io.Reader, size int64, opts minio.PutObjectOptions) (minio.UploadInfo, error) {
	info, err := d.ObjectPutter.PutObject(ctx, bucket, key, r, size, opts)
	if strings.HasPrefix(key, "dlq/") {
		d.count.stale()
	}
	return info, err
}
