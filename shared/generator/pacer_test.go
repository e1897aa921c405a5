package generator

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// TestPacerKeepsTheRate runs the pacer on a simulated clock: each operation takes its turn's
// latency, and the rate over 10 s must be the one asked whenever the mean latency is below the
// interval, however the latencies swing around it (the ticker before, which drops the ticks it
// missed, gave 80% of the rate when one operation in four takes two intervals, though the mean
// is 0.69 of one). A writer stopped for a minute catches up at most a second of operations.
func TestPacerKeepsTheRate(t *testing.T) {
	const rate = 200
	interval := time.Second / rate
	for _, tc := range []struct {
		name      string
		latencies []time.Duration // cycled
		stopAt    int             // the operation after which the writer stands still for a minute (0: never)
		min, max  int             // operations in the 10 s after the start (or after the stop)
	}{
		{"fast", []time.Duration{interval / 10}, 0, 1995, 2001},
		{"swinging around the interval", []time.Duration{interval / 2, interval * 3 / 2}, 0, 1990, 2001},
		{"mostly fast, a slow one in four", []time.Duration{interval / 4, interval / 4, interval / 4, interval * 2}, 0, 1990, 2001},
		{"slower than the interval", []time.Duration{interval * 2}, 0, 995, 1001},
		{"stopped for a minute", []time.Duration{interval / 10}, 100, 2000, 2000 + rate + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			now := start
			p := newPacer(rate, start)
			from, n := start, 0
			for i := 0; ; i++ {
				now = now.Add(p.wait(now))
				if now.Sub(from) >= 10*time.Second {
					break
				}
				n++
				now = now.Add(tc.latencies[i%len(tc.latencies)])
				if tc.stopAt > 0 && i == tc.stopAt {
					now = now.Add(time.Minute)
					from, n = now, 0
				}
			}
			if n < tc.min || n > tc.max {
				t.Fatalf("%d operations in 10 s, want %d to %d", n, tc.min, tc.max)
			}
		})
	}
}

// TestRunKeepsTheRateWithSlowOperations runs operations that each take four intervals of the
// rate asked (20 ms at 200 a second, as a loaded machine's round trips and commits give): one
// writer reaches a quarter of the rate (what `fin up --rate 200` showed: about 70 a second), and
// eight reach the rate, never more than eight under way at once. Real time: the bounds leave
// room for a loaded machine's late timers.
func TestRunKeepsTheRateWithSlowOperations(t *testing.T) {
	const rate = 200
	const latency = 4 * time.Second / rate
	const window = 1500 * time.Millisecond
	for _, tc := range []struct {
		writers  int
		min, max int // operations started in the window
	}{
		{1, 0, 80},    // at most 1.5 s / 20 ms = 75
		{8, 285, 301}, // the rate's 300, less a late timer's few
	} {
		t.Run(fmt.Sprintf("%d writers", tc.writers), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), window)
			defer cancel()
			var started, under, most atomic.Int64
			run(ctx, rate, tc.writers, func(context.Context) {
				started.Add(1)
				n := under.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(latency)
				under.Add(-1)
			})
			if n := started.Load(); n < int64(tc.min) || n > int64(tc.max) {
				t.Errorf("%d operations started in %s, want %d to %d", n, window, tc.min, tc.max)
			}
			if m := most.Load(); m > int64(tc.writers) {
				t.Errorf("%d operations under way at once, with %d writers", m, tc.writers)
			}
			if n := under.Load(); n != 0 {
				t.Errorf("run returned with %d operations still under way", n)
			}
		})
	}
}
