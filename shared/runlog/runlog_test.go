package runlog

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func values(from, to int) [][]byte {
	var out [][]byte
	for i := from; i <= to; i++ {
		out = append(out, []byte(fmt.Sprintf(`{"n":%d}`, i)))
	}
	return out
}

// TestPagesByKeyAcrossReopen adds records, closes the file, opens it again (a restart of fin up),
// adds more, and walks every page by the last key seen: every record once, newest first.
func TestPagesByKeyAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console", "runs.db")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Add(Runs, values(1, 7), nil); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if l, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	keys, err := l.Add(Runs, values(8, 10), nil)
	if err != nil || keys[0] != 8 || keys[2] != 10 {
		t.Fatalf("keys after reopening = %v, %v; want 8..10 (the sequence survives)", keys, err)
	}
	var seen []string
	for before, pages := uint64(0), 0; ; pages++ {
		page, err := l.Page(Runs, before, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			if pages != 4 {
				t.Errorf("%d pages of 3 for 10 records, want 4", pages)
			}
			break
		}
		for _, e := range page {
			seen = append(seen, string(e.Value))
		}
		before = page[len(page)-1].Key
	}
	want := fmt.Sprint(values(1, 10))
	for i, j := 0, len(seen)-1; i < j; i, j = i+1, j-1 {
		seen[i], seen[j] = seen[j], seen[i]
	}
	if got := fmt.Sprint(seen); len(seen) != 10 || got != fmt.Sprint(toStrings(values(1, 10))) {
		t.Fatalf("walked %v, want %v newest first", seen, want)
	}
	if n, err := l.Count(Runs); n != 10 || err != nil {
		t.Fatalf("Count = %d, %v; want 10", n, err)
	}
}

func toStrings(v [][]byte) []string {
	var out []string
	for _, b := range v {
		out = append(out, string(b))
	}
	return out
}

func TestPageEdges(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "runs.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if page, err := l.Page(Loads, 0, 10); err != nil || len(page) != 0 {
		t.Fatalf("an empty kind: %v, %v", page, err)
	}
	l.Add(Loads, values(1, 5), nil)
	for _, c := range []struct {
		before uint64
		first  uint64
		n      int
	}{{0, 5, 5}, {3, 2, 2}, {1, 0, 0}, {99, 5, 5}} {
		page, err := l.Page(Loads, c.before, 10)
		if err != nil || len(page) != c.n || c.n > 0 && page[0].Key != c.first {
			t.Errorf("Page(before %d) = %v, %v; want %d records from key %d", c.before, page, err, c.n, c.first)
		}
	}
	if _, err := l.Page("nope", 0, 1); err == nil {
		t.Error("an unknown kind gave no error")
	}
	if _, err := l.Get(Loads, 42); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of a missing key: %v, want ErrNotFound", err)
	}
}

// TestDetailsWindow: a run's detail goes away KeepDetails runs later; its summary stays. Loads
// keep a window of KeepLoads the same way.
func TestDetailsWindow(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "runs.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	n := KeepDetails + 2
	if _, err := l.Add(Runs, values(1, n), values(1, n)); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[uint64]bool{1: false, 2: false, 3: true, uint64(n): true} {
		_, err := l.Get(RunDetails, key)
		if got := err == nil; got != want {
			t.Errorf("detail of run %d kept = %v, want %v (%v)", key, got, want, err)
		}
		if _, err := l.Get(Runs, key); err != nil {
			t.Errorf("summary of run %d: %v", key, err)
		}
	}
	l.keep[Loads] = 5 // KeepLoads (a million) behaves alike, in 15 s
	if _, err := l.Add(Loads, values(1, 6), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Get(Loads, 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("load 1 of 6 in a window of 5: %v, want dropped", err)
	}
	if page, err := l.Page(Loads, 3, 10); err != nil || len(page) != 1 || page[0].Key != 2 {
		t.Errorf("the oldest page of loads: %v, %v; want load 2 alone", page, err)
	}
}

func TestParseKey(t *testing.T) {
	for in, want := range map[string]uint64{"": 0, "17": 17} {
		if got, err := ParseKey(in); got != want || err != nil {
			t.Errorf("ParseKey(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"0", "-1", "abc", "1e3"} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) took it", bad)
		}
	}
}

func TestSecondOpenFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs.db")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l2, err := Open(path)
	if err == nil {
		l2.Close()
		t.Fatal("a second open of a held run log succeeded")
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "another fin up") {
		t.Errorf("a held run log: %v; want the file and the likely cause", err)
	}
}
