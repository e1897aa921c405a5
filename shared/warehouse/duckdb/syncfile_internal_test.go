package duckdb

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// After a restart (no checksums in memory) the copy is compared whole and brought up to date in
// place: after the source changes anywhere, grows or shrinks, the copy equals it byte for byte,
// and only the blocks that differ are written.
func TestSyncFileFollowsTheSource(t *testing.T) {
	random := randomBytes(rand.New(rand.NewPCG(1, 2)))
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
			size, written, err := newFileSync().sync(src, dst)
			if err != nil {
				t.Fatalf("sync: %v", err)
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

// One fileSync over a run of changes keeps the copy equal to the source from the checksums it
// kept, writing only the blocks that changed; a new one (a restart) or a copy changed by
// something else compares whole.
func TestSyncFileFromItsChecksums(t *testing.T) {
	random := randomBytes(rand.New(rand.NewPCG(3, 4)))
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "raw.duckdb"), filepath.Join(dir, "snap", "raw.snapshot.duckdb")
	data := random(6*syncBlock + 777)
	sync := newFileSync()
	steps := []struct {
		name     string
		change   func([]byte) []byte // the source after the step; nil leaves it
		before   func()              // done to the copy before the sync
		restart  bool
		maxWrite int64
		minWrite int64
	}{
		{name: "first copy", maxWrite: int64(len(data)), minWrite: int64(len(data))},
		{name: "unchanged"},
		{name: "changed in the middle", change: func(b []byte) []byte { copy(b[3*syncBlock+5:], "middle"); return b },
			maxWrite: syncBlock, minWrite: syncBlock},
		{name: "changed in two blocks", change: func(b []byte) []byte {
			copy(b[10:], "first")
			copy(b[4*syncBlock+9:], "fifth")
			return b
		}, maxWrite: 2 * syncBlock, minWrite: 2 * syncBlock},
		{name: "changed at the end", change: func(b []byte) []byte { copy(b[len(b)-3:], "end"); return b },
			maxWrite: 777, minWrite: 777},
		{name: "grown by a partial block", change: func(b []byte) []byte { return append(b, random(100)...) },
			maxWrite: 877, minWrite: 877},
		{name: "grown by blocks", change: func(b []byte) []byte { return append(b, random(2*syncBlock+5)...) },
			maxWrite: 3 * syncBlock, minWrite: 2 * syncBlock},
		{name: "shrunk into a block", change: func(b []byte) []byte { return b[:5*syncBlock+10] }, maxWrite: 10, minWrite: 10},
		{name: "shrunk to a block boundary and changed", change: func(b []byte) []byte {
			b = b[:4*syncBlock]
			copy(b[len(b)-1:], "x")
			return b
		}, maxWrite: syncBlock, minWrite: syncBlock},
		{name: "a restart, then changed", restart: true, change: func(b []byte) []byte { copy(b[syncBlock:], "restart"); return b },
			maxWrite: syncBlock, minWrite: syncBlock},
		{name: "the copy changed by something else", before: func() { corrupt(t, dst, 2*syncBlock, false) },
			maxWrite: syncBlock, minWrite: syncBlock},
		{name: "the copy replaced by another file", before: func() {
			b, err := os.ReadFile(dst)
			if err != nil {
				t.Fatal(err)
			}
			b[syncBlock+1]++
			if err := os.Remove(dst); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, maxWrite: syncBlock, minWrite: syncBlock},
		{name: "shrunk to nothing", change: func([]byte) []byte { return []byte{} }},
		{name: "grown from nothing", change: func([]byte) []byte { return random(syncBlock + 1) },
			maxWrite: syncBlock + 1, minWrite: syncBlock + 1},
	}
	for _, st := range steps {
		if st.change != nil {
			data = st.change(data)
		}
		if err := os.WriteFile(src, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if st.before != nil {
			st.before()
		}
		if st.restart {
			sync = newFileSync()
		}
		size, written, err := sync.sync(src, dst)
		if err != nil {
			t.Fatalf("%s: sync: %v", st.name, err)
		}
		got, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%s: copy differs from the source: %d bytes, want %d; first difference at %d", st.name, len(got), len(data), firstDiff(got, data))
		}
		if size != int64(len(data)) {
			t.Errorf("%s: size = %d, want %d", st.name, size, len(data))
		}
		if written > st.maxWrite || written < st.minWrite {
			t.Errorf("%s: wrote %d bytes, want %d to %d", st.name, written, st.minWrite, st.maxWrite)
		}
	}

	// The checksums are trusted while the copy is as the last sync left it: a change made behind
	// the sync's back that keeps the copy's size and modification time is not seen, which shows
	// that the copy was not read.
	corrupt(t, dst, 0, true)
	if _, written, err := sync.sync(src, dst); err != nil || written != 0 {
		t.Fatalf("sync after a hidden change: wrote %d, %v; want 0 bytes from the checksums alone", written, err)
	}
	if got, _ := os.ReadFile(dst); bytes.Equal(got, data) {
		t.Fatal("the copy was read: a hidden change was repaired without a restart")
	}
	if _, _, err := newFileSync().sync(src, dst); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
		t.Fatal("a restart did not repair the copy")
	}
}

// corrupt flips a byte of the file at path; with keepTime its modification time is put back.
func corrupt(t *testing.T, path string, at int64, keepTime bool) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0]++
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if keepTime {
		if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
			t.Fatal(err)
		}
	} else if err := os.Chtimes(path, fi.ModTime().Add(time.Second), fi.ModTime().Add(time.Second)); err != nil {
		t.Fatal(err) // a clock coarser than the write must still show the change
	}
}

// randomBytes returns a source of n random bytes at a time.
func randomBytes(rng *rand.Rand) func(n int) []byte {
	return func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
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
// changed, from the checksums of the last sync and after a restart (the copy compared whole),
// with copying it whole (go test -run '^$' -bench SnapshotOf100MB ./shared/warehouse/duckdb/).
// cpu-ns/op is the process's CPU time, which a busy machine disturbs less than the wall time.
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
	inPlace := func(sync func() *fileSync) func(b *testing.B) {
		return func(b *testing.B) {
			if _, _, err := sync().sync(src, dst); err != nil {
				b.Fatal(err)
			}
			f, err := os.OpenFile(src, os.O_RDWR, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			defer reportCPU(b)()
			for i := 0; b.Loop(); i++ {
				if _, err := f.WriteAt(bytes.Repeat([]byte{byte(i)}, 1<<20), int64(i%100)<<20); err != nil {
					b.Fatal(err)
				}
				if _, _, err := sync().sync(src, dst); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	kept := newFileSync()
	b.Run("in place, 1 MB changed", inPlace(func() *fileSync { return kept }))
	b.Run("in place after a restart, 1 MB changed", inPlace(newFileSync))
	b.Run("whole copy", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			in, err := os.Open(src)
			if err != nil {
				b.Fatal(err)
			}
			_, _, err = newFileSync().copyFile(in, dst)
			in.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// reportCPU starts counting the process's CPU time; the function it returns reports it per op.
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var r syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r); err != nil {
			b.Fatal(err)
		}
		return time.Duration(r.Utime.Nano() + r.Stime.Nano())
	}
	start := cpu()
	return func() { b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op") }
}
