package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"syscall"
	"time"
)

// dumpHeapOnSignal writes a heap profile (go tool pprof) into dir each time the process gets
// SIGUSR1, until ctx ends: a look at what a long-running `fin up` holds without opening a port
// (kill -USR1 <pid>; the file name is logged).
func dumpHeapOnSignal(ctx context.Context, dir string) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	go func() {
		defer signal.Stop(sig)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
			}
			path, err := writeHeapProfile(dir, time.Now())
			if err != nil {
				slog.Warn("heap profile", "err", err)
				continue
			}
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			gc, process := cpuSeconds()
			// What Go holds from the OS is sys less released; the limit is GOMEMLIMIT's (fin up's
			// default); the collector's CPU beside the process's since start is what the limit costs.
			slog.Warn("heap profile written", "path", path, "heap_inuse_mb", m.HeapInuse>>20, "sys_mb", m.Sys>>20,
				"released_mb", m.HeapReleased>>20, "memory_limit_mb", debug.SetMemoryLimit(-1)>>20,
				"gc_cpu_s", fmt.Sprintf("%.1f", gc), "cpu_s", fmt.Sprintf("%.1f", process))
		}
	}()
}

// cpuSeconds is the CPU the collector has used since start (the runtime's estimate) and the
// process's own (user and system, from getrusage: Go and the C code DuckDB runs alike).
func cpuSeconds() (gc, process float64) {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		process = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	return s[0].Value.Float64(), process
}

// writeHeapProfile writes the heap profile after a collection, so it shows what is live. It
// appears under its name whole (a rename), so whoever waits for it never reads half a file.
func writeHeapProfile(dir string, now time.Time) (string, error) {
	path := filepath.Join(dir, fmt.Sprintf("heap-%s.pprof", now.UTC().Format("20060102T150405.000")))
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return "", fmt.Errorf("heap profile %s: %w", path, err)
	}
	runtime.GC()
	werr := pprof.Lookup("heap").WriteTo(f, 0)
	if err := errors.Join(werr, f.Close(), os.Rename(path+".tmp", path)); err != nil {
		os.Remove(path + ".tmp")
		return "", fmt.Errorf("heap profile %s: %w", path, err)
	}
	return path, nil
}
