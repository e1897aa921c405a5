package duckdb

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// The snapshot is brought up to date in place: after the source changes anywhere, grows or
// shrinks, the copy equals it byte for byte, and only the blocks that differ are written.
func TestSyncFileFollowsTheSource(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	}
	base := random(5*syncBlock + 1234) // not a whole number of blocks
	with := func(at int, p []byte) []byte {
		b := bytes.Clone(base)
		copy(b[at:], p)
		return b
	}
	cases := []struct {
		name     string
		copy     []byte // what the previous snapshot holds; nil: there is none
		src      []byte
		maxWrite int64
	}{
		{"first copy", nil, base, int64(len(base))},
		{"unchanged", base, base, 0},
		{"changed in the middle", base, with(2*syncBlock+10, []byte("changed")), syncBlock},
		{"changed across a block boundary", base, with(3*syncBlock-3, []byte("across")), 2 * syncBlock},
		{"changed at the end", base, with(len(base)-5, []byte("tail!")), syncBlock},
		{"grown", base, append(bytes.Clone(base), random(3*syncBlock+7)...), 4 * syncBlock},
		{"shrunk", base, base[:2*syncBlock+99], syncBlock},
		{"shrunk to nothing", base, []byte{}, 0},
		{"torn by a crash", base[:syncBlock/2], base, int64(len(base))},
		{"garbage in the middle of the copy", with(syncBlock, random(100)), base, syncBlock},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			src, dst := filepath.Join(dir, "raw.duckdb"), filepath.Join(dir, "snap", "raw.snapshot.duckdb")
			if err := os.WriteFile(src, c.src, 0o600); err != nil {
				t.Fatal(err)
			}
			if c.copy != nil {
				if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(dst, c.copy, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			size, written, err := syncFile(src, dst)
			if err != nil {
				t.Fatalf("syncFile: %v", err)
			}
			got, err := os.ReadFile(dst)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.src) {
				t.Fatalf("copy differs from the source: %d bytes, want %d; first difference at %d", len(got), len(c.src), firstDiff(got, c.src))
			}
			if size != int64(len(c.src)) {
				t.Errorf("size = %d, want %d", size, len(c.src))
			}
			if written > c.maxWrite {
				t.Errorf("wrote %d bytes, want at most %d: the copy must cost what changed", written, c.maxWrite)
			}
			if c.copy != nil && !bytes.Equal(c.copy, c.src) && written == 0 && len(c.src) > 0 && len(c.src) >= len(c.copy) {
				t.Errorf("wrote nothing though the source changed")
			}
			if left, _ := filepath.Glob(dst + ".*.tmp"); len(left) > 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// BenchmarkSnapshotOf100MB compares bringing a 100 MB snapshot up to date after 1 MB of RAW
// changed with copying it whole (go test -run '^$' -bench SnapshotOf100MB ./shared/warehouse/duckdb/).
func BenchmarkSnapshotOf100MB(b *testing.B) {
	dir := b.TempDir()
	src, dst := filepath.Join(dir, "raw.duckdb"), filepath.Join(dir, "snap.duckdb")
	data := make([]byte, 100<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(src, data, 0o600); err != nil {
		b.Fatal(err)
	}
	b.Run("in place, 1 MB changed", func(b *testing.B) {
		if _, _, err := syncFile(src, dst); err != nil {
			b.Fatal(err)
		}
		f, err := os.OpenFile(src, os.O_RDWR, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		for i := 0; b.Loop(); i++ {
			if _, err := f.WriteAt(bytes.Repeat([]byte{byte(i)}, 1<<20), int64(i%100)<<20); err != nil {
				b.Fatal(err)
			}
			if _, _, err := syncFile(src, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("whole copy", func(b *testing.B) {
		for b.Loop() {
			in, err := os.Open(src)
			if err != nil {
				b.Fatal(err)
			}
			_, err = copyFile(in, dst)
			in.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
