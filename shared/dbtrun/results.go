package dbtrun

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Summary is what one dbt build did, counted from run_results.json.
type Summary struct {
	InvocationID  string `json:"invocation_id"`
	Selector      string `json:"selector,omitempty"`
	FullRefresh   bool   `json:"full_refresh,omitempty"`
	ModelsBuilt   int    `json:"models_built"`
	ModelsFailed  int    `json:"models_failed"`
	ModelsSkipped int    `json:"models_skipped"`
	TestsPassed   int    `json:"tests_passed"`
	TestsWarned   int    `json:"tests_warned"`
	TestsFailed   int    `json:"tests_failed"`
	TestsSkipped  int    `json:"tests_skipped"`
	// OtherFailed counts failed seeds, snapshots and other nodes.
	OtherFailed int `json:"other_failed"`
	// Failures names each failed node with dbt's message (for a test: how many rows failed).
	Failures []Failure `json:"failures,omitempty"`
	// Elapsed is dbt's own elapsed time; Wall includes its start-up and parsing.
	Elapsed        time.Duration `json:"-"`
	ElapsedSeconds float64       `json:"elapsed_seconds"`
	Wall           time.Duration `json:"-"`
	WallSeconds    float64       `json:"wall_seconds"`
	// Cut is gold's consistent cut when the build published it (Config.Cut read it back).
	Cut *Cut `json:"cut,omitempty"`
	// started is when the runner started dbt: a cut built at or after it is this build's.
	started time.Time
}

// Failure is one node that failed or errored.
type Failure struct {
	Node    string `json:"node"`
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

type runResults struct {
	Metadata struct {
		InvocationID string `json:"invocation_id"`
	} `json:"metadata"`
	ElapsedTime float64 `json:"elapsed_time"`
	Results     []struct {
		UniqueID string `json:"unique_id"`
		Status   string `json:"status"`
		Message  string `json:"message"`
	} `json:"results"`
}

func parseRunResults(data []byte) (Summary, error) {
	var rr runResults
	if err := json.Unmarshal(data, &rr); err != nil {
		return Summary{}, fmt.Errorf("decode run results: %w", err)
	}
	s := Summary{
		InvocationID:   rr.Metadata.InvocationID,
		Elapsed:        time.Duration(rr.ElapsedTime * float64(time.Second)),
		ElapsedSeconds: rr.ElapsedTime,
	}
	for _, r := range rr.Results {
		kind, _, _ := strings.Cut(r.UniqueID, ".")
		failed := r.Status == "error" || r.Status == "fail" || r.Status == "runtime error"
		switch {
		case kind == "model" && r.Status == "success":
			s.ModelsBuilt++
		case kind == "model" && failed:
			s.ModelsFailed++
		case kind == "model" && r.Status == "skipped":
			s.ModelsSkipped++
		case kind == "test" || kind == "unit_test":
			switch {
			case r.Status == "pass":
				s.TestsPassed++
			case r.Status == "warn":
				s.TestsWarned++
			case failed:
				s.TestsFailed++
			case r.Status == "skipped":
				s.TestsSkipped++
			}
		case failed:
			s.OtherFailed++
		}
		if failed {
			s.Failures = append(s.Failures, Failure{Node: r.UniqueID, Status: r.Status, Message: r.Message})
		}
	}
	sort.Slice(s.Failures, func(i, j int) bool { return s.Failures[i].Node < s.Failures[j].Node })
	return s, nil
}

func (s Summary) failedNodes() []string {
	out := make([]string, 0, len(s.Failures))
	for _, f := range s.Failures {
		out = append(out, f.Node)
	}
	return out
}
