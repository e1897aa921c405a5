package s3local

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
)

// BenchmarkPut is a PUT through the local S3's backend on disk (marker, staged write, fsyncs,
// rename, metadata), as the capture's manifest (one key overwritten) and bronze (new keys) do.
func BenchmarkPut(b *testing.B) {
	body := bytes.Repeat([]byte("m"), 1<<10)
	for _, overwrite := range []bool{true, false} {
		name := map[bool]string{true: "overwrite", false: "new-key"}[overwrite]
		b.Run(name, func(b *testing.B) {
			root := filepath.Join(b.TempDir(), "s3")
			fs, err := newAtomicFs(root)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := dropUnstored(root); err != nil {
				b.Fatal(err)
			}
			files, err := s3afero.MultiBucket(fs)
			if err != nil {
				b.Fatal(err)
			}
			if err := files.CreateBucket("lake"); err != nil {
				b.Fatal(err)
			}
			backend := &notifying{Backend: files, fs: fs, emit: func(events.S3Event) {}, region: Region}
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
}
