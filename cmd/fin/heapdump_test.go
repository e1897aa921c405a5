package main

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestHeapDumpOnSignal: SIGUSR1 writes a heap profile (gzip-compressed protobuf, as go tool pprof
// reads it) into the state directory, and a second signal a second file.
func TestHeapDumpOnSignal(t *testing.T) {
	dir := t.TempDir()
	dumpHeapOnSignal(t.Context(), dir)
	for want := 1; want <= 2; want++ {
		if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		var files []string
		deadline := time.Now().Add(10 * time.Second)
		for len(files) < want && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			files, _ = filepath.Glob(filepath.Join(dir, "heap-*.pprof"))
		}
		if len(files) != want {
			t.Fatalf("after %d SIGUSR1: %d heap profiles in %s, want %d", want, len(files), dir, want)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) < 100 || !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
				t.Errorf("%s: %d bytes, not a gzip-compressed profile", f, len(b))
			}
		}
	}
}
