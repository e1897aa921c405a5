package main

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// FIN_CPUPROFILE_SIGNAL's profile covers a SIGUSR1..SIGUSR2 window: no file before the first
// SIGUSR1, a complete profile (gzip) once SIGUSR2 ends the window, and the process lives through
// both signals (without the handler either would end it).
func TestProfileBetweenSignals(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	stop := profileBetweenSignals(path)
	defer stop()
	time.Sleep(20 * time.Millisecond)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a profile before any SIGUSR1: %v", err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no profile started 10 s after SIGUSR1")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
		// Some CPU for the profile to hold.
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 2 && bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
			return // written and closed: pprof's profiles are gzip
		}
		if time.Now().After(deadline) {
			t.Fatalf("profile of %d bytes 10 s after SIGUSR2, want a gzip stream", len(b))
		}
		time.Sleep(5 * time.Millisecond)
	}
}
