package s3local

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// BenchmarkPut is a PUT through the local S3's backend on disk (marker, staged write, fsyncs,
// rename, metadata), as the capture's manifest (one key overwritten) and bronze (new keys) do;
// parallel: four clients at once, as the landing's and the capture's PUTs arrive together.
func BenchmarkPut(b *testing.B) {
	body := bytes.Repeat([]byte("m"), 1<<10)
	for _, overwrite := range []bool{true, false} {
		name := map[bool]string{true: "overwrite", false: "new-key"}[overwrite]
		b.Run(name, func(b *testing.B) {
			backend := benchBackend(b)
			b.ResetTimer()
			for i := range b.N {
				key := "_manifest/capture/fin.json"
				if !overwrite {
					key = fmt.Sprintf("bronze/accounts/dt=2026-12-07/fin.public.accounts-0-%d-%d-ab.parquet", i, i+1)
				}
				if _, err := backend.PutObject("lake", key, nil, bytes.NewReader(body), int64(len(body)), nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("new-key-parallel", func(b *testing.B) {
		backend := benchBackend(b)
		var n atomic.Int64
		b.SetParallelism(2) // two clients a core
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				key := fmt.Sprintf("bronze/accounts/dt=2026-12-07/fin.public.accounts-0-%d-%d-ab.parquet", i, i+1)
				if _, err := backend.PutObject("lake", key, nil, bytes.NewReader(body), int64(len(body)), nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// benchBackend is a started backend on disk with the bucket lake.
func benchBackend(b *testing.B) *notifying {
	root := filepath.Join(b.TempDir(), "s3")
	if _, _, err := dropUnstored(root); err != nil {
		b.Fatal(err)
	}
	fs, files := openBackend(b, root)
	if err := files.CreateBucket("lake"); err != nil {
		b.Fatal(err)
	}
	return &notifying{Backend: files, fs: fs, emit: func(events.S3Event) {}, region: Region}
}
