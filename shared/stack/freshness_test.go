package stack

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The freshness chart reads the hour once, then only the last few minutes of RAW per gather: a
// minute older than that keeps its point, one read again is replaced, one past the hour goes.
func TestFreshnessChartReadsWhatChanged(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 30, 0, time.UTC)
	minute := func(m int) string {
		return fmt.Sprint(t0.Truncate(time.Minute).Add(time.Duration(m) * time.Minute).UnixMilli())
	}
	var asked []string
	answer := [][]string{{minute(-59), "1", "2", "10"}, {minute(-10), "1", "2", "10"}, {minute(-1), "1", "2", "10"}}
	query := func(_ context.Context, q string) ([][]string, error) { asked = append(asked, q); return answer, nil }
	var f freshnessChart
	if got, err := f.update(context.Background(), query, t0); err != nil || len(got) != 3 {
		t.Fatalf("first gather: %d points (%v), want the hour's 3", len(got), err)
	}
	if !strings.Contains(asked[0], "INTERVAL 60 MINUTE") {
		t.Fatalf("first gather read %s, want the last hour", asked[0])
	}
	// Two minutes later: RAW's last minutes again, with the one before now changed.
	answer = [][]string{{minute(-1), "3", "4", "20"}, {minute(1), "1", "2", "5"}}
	got, err := f.update(context.Background(), query, t0.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if want := "> TIMESTAMPTZ '2026-12-06 11:57:00.000000+00'"; !strings.Contains(asked[1], want) || strings.Contains(asked[1], "INTERVAL 60 MINUTE") {
		t.Fatalf("second gather read %s, want only rows loaded after 11:57 (%s)", asked[1], want)
	}
	var minutes []string
	for _, p := range got {
		minutes = append(minutes, fmt.Sprintf("%s:%d", p.Minute.UTC().Format("15:04"), p.Rows))
	}
	if want := "11:50:10 11:59:20 12:01:5"; strings.Join(minutes, " ") != want {
		t.Fatalf("chart %v, want %s (11:01 past the hour, 11:50 kept, 11:59 replaced)", minutes, want)
	}
}
