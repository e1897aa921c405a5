package bronze

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/parquet-go/parquet-go/compress/zstd"
)

// pageOf is n bytes of JSON row images, as a bronze page holds: repetitive, with random parts.
func pageOf(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	var b bytes.Buffer
	for b.Len() < n {
		fmt.Fprintf(&b, `{"account_id":"%016x","balance":"%d.%02d","currency":"EUR","status":"ACTIVE"}`,
			r.Uint64(), r.IntN(1_000_000), r.IntN(100))
	}
	return b.Bytes()[:n]
}

// TestZstdCodecWritesParquetGosBytes holds the bronze codec to parquet-go's zstd codec at the
// same level, byte for byte, at every page length around its windows and blocks: objects
// written before and after the codec changed are the same, so a redelivered batch rewrites an
// identical object.
func TestZstdCodecWritesParquetGosBytes(t *testing.T) {
	theirs := &zstd.Codec{Level: zstd.SpeedFastest}
	for _, n := range []int{0, 1, 100, 1024, 1025, 5000, 64 << 10, 64<<10 + 1, 256 << 10, 300_000,
		smallWindow, smallWindow + 1, 3 << 20} {
		for seed := range uint64(2) {
			src := pageOf(n, seed)
			want, err := theirs.Encode(nil, src)
			if err != nil {
				t.Fatal(err)
			}
			// Twice: a pooled encoder's second page is encoded as its first.
			for round := range 2 {
				got, err := parquetCodec.Encode(nil, src)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%d bytes, seed %d, round %d: %d bytes compressed, parquet-go's codec %d: not the same",
						n, seed, round, len(got), len(want))
				}
				back, err := parquetCodec.Decode(nil, got)
				if err != nil || !bytes.Equal(back, src) {
					t.Fatalf("%d bytes, seed %d: decoded %d bytes, %v", n, seed, len(back), err)
				}
			}
		}
	}
}

// TestZstdCodecMemoryFollowsThePage compresses one page the length of parquet-go's page buffer
// after two collections (which empty the codec's pools: new encoders, as a long-running landing
// gets them) and counts the bytes allocated: a few times the page, not the 8 MiB history of
// parquet-go's encoders, which `fin up` kept in its heap.
func TestZstdCodecMemoryFollowsThePage(t *testing.T) {
	src := pageOf(256<<10, 7)
	dst := make([]byte, 0, len(src))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := parquetCodec.Encode(dst, src); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	const most = 3 << 20
	got := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d KiB allocated to compress a page of %d KiB", got>>10, len(src)>>10)
	if got > most {
		t.Fatalf("%d KiB allocated to compress a page of %d KiB; want at most %d KiB",
			got>>10, len(src)>>10, most>>10)
	}
}
