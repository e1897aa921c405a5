package stack

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/console"
	"github.com/fin-orchestrator/fin-orchestrator/shared/runlog"
)

// yearOfRuns is a year of minute-by-minute dbt runs.
const yearOfRuns = 525_600

// seedRuns adds n runs to the run log in StateDir, a summary each and, for the last
// runlog.KeepDetails, a detail of 30 nodes and 8 KB of log, as a year of builds leaves it.
func seedRuns(b *testing.B, stateDir string, n int) {
	l, err := runlog.Open(RunLogPath(stateDir))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	rows := int64(1200)
	var nodes []console.RunNode
	for i := range 30 {
		nodes = append(nodes, console.RunNode{ID: fmt.Sprintf("model.fin.model_%02d", i), Kind: "model", Status: "success", Seconds: 0.4, RowsAffected: &rows})
	}
	detail, _ := json.Marshal(console.RunDetail{Nodes: nodes, Log: strings.Repeat("12:00:01  1 of 30 OK created sql table model ... [OK in 0.40s]\n", 120)})
	for from := 0; from < n; from += 10_000 {
		var sums, details [][]byte
		for i := from; i < min(n, from+10_000); i++ {
			lag := 20.5
			sum, _ := json.Marshal(console.Run{Started: start.Add(time.Duration(i) * time.Minute), Ended: start.Add(time.Duration(i)*time.Minute + 20*time.Second),
				Trigger: "schedule", OK: true, Models: 30, TestsPassed: 60, Seconds: 20, GoldLagSeconds: &lag})
			sums = append(sums, sum)
			if n-i <= runlog.KeepDetails {
				details = append(details, detail)
			} else {
				details = append(details, nil)
			}
		}
		if _, err := l.Add(runlog.Runs, sums, details); err != nil {
			b.Fatal(err)
		}
	}
}

// consoleFor serves the console's runs endpoints and status on stateDir's run log, as fin up
// does after a start (openRunLog: the status's last 20 runs come from the log).
func consoleFor(b *testing.B, stateDir string) (*httptest.Server, time.Duration, func()) {
	s := &Stack{cfg: Config{StateDir: stateDir}, token: strings.Repeat("t", 32)}
	began := time.Now()
	if err := s.openRunLog(); err != nil {
		b.Fatal(err)
	}
	opened := time.Since(began)
	s.status = newStatusCache(s)
	st := console.Status{Time: time.Now()}
	c := statusCache{s: s}
	c.addDbtAndInvocations(&st)
	s.status.last = st
	srv := httptest.NewServer(console.Handler(s.token, &s.codes, s.status.get, s.runsHandlers()))
	return srv, opened, func() { srv.Close(); s.runLog.Close() }
}

var benchSeed sync.Once

// BenchmarkConsoleRuns: the console's lists and status over a year of minute-by-minute runs
// (525,600), each beside its reference measured in the same run: the same request on a run log
// of one page (50 runs), and for the status a plain read of a file of its size. ratio = seeded /
// reference, of the medians; near 1 is a page that does not slow down as the runs pile up.
func BenchmarkConsoleRuns(b *testing.B) {
	dir := os.Getenv("FIN_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	year, small := filepath.Join(dir, "year"), filepath.Join(dir, "page")
	var seedTime time.Duration
	benchSeed.Do(func() {
		os.RemoveAll(year)
		os.RemoveAll(small)
		began := time.Now()
		seedRuns(b, year, yearOfRuns)
		seedTime = time.Since(began)
		seedRuns(b, small, 50)
	})
	big, openBig, done := consoleFor(b, year)
	defer done()
	ref, openRef, doneRef := consoleFor(b, small)
	defer doneRef()
	if seedTime > 0 {
		st, _ := os.Stat(RunLogPath(year))
		fmt.Printf("seeded %d runs in %s (%d MB); fin up's start read the last 20 in %s (one page: %s)\n", yearOfRuns, seedTime.Round(time.Millisecond),
			st.Size()>>20, openBig.Round(time.Microsecond), openRef.Round(time.Microsecond))
	}
	statusBody := fetch(b, big.URL+"/api/status", "")
	plain := filepath.Join(dir, "status.json")
	os.WriteFile(plain, statusBody, 0o600)
	for _, c := range []struct {
		name      string
		path, ref string
	}{
		{"runs first page", "/api/runs", "/api/runs"},
		{"runs deep page (before key 1,000)", "/api/runs?before=1000", "/api/runs"},
		{"run detail (newest)", fmt.Sprintf("/api/runs/%d", yearOfRuns), "/api/runs/50"},
		{"status", "/api/status", "/api/status"},
		{"status beside a plain read of its bytes from a file", "/api/status", ""},
	} {
		b.Run(c.name, func(b *testing.B) {
			if body := fetch(b, big.URL+c.path, ""); len(body) < 100 {
				b.Fatalf("%s answered %q", c.path, body)
			}
			// Alternated, so that the machine's other work weighs on both alike; medians, so that
			// a pause of the shared machine does not decide the ratio.
			seeded, reference := make([]time.Duration, b.N), make([]time.Duration, b.N)
			for i := range b.N {
				began := time.Now()
				fetch(b, big.URL+c.path, "")
				seeded[i] = time.Since(began)
				began = time.Now()
				if c.ref == "" {
					if _, err := os.ReadFile(plain); err != nil {
						b.Fatal(err)
					}
				} else {
					fetch(b, ref.URL+c.ref, "")
				}
				reference[i] = time.Since(began)
			}
			mSeeded, mRef := median(seeded), median(reference)
			b.ReportMetric(float64(mSeeded.Nanoseconds()), "ns/op")
			b.ReportMetric(float64(mRef.Nanoseconds()), "ref-ns/op")
			b.ReportMetric(float64(mSeeded)/float64(mRef), "ratio")
		})
	}
}

func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

func fetch(b *testing.B, url, _ string) []byte {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+strings.Repeat("t", 32))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		b.Fatalf("%s: %d %s", url, resp.StatusCode, body)
	}
	return body
}
