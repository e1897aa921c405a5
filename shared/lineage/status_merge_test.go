package lineage

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestMergeRunResults(t *testing.T) {
	tests := []struct {
		name, prev, next string
		want             []string // unique_id=status, in order
	}{
		{"no earlier run", ``, `{"metadata":{"generated_at":"2026-01-02T00:00:00Z"},"results":[{"unique_id":"a","status":"pass"}]}`, []string{"a=pass"}},
		{"a selected build keeps what it did not run",
			`{"metadata":{"generated_at":"2026-01-01T00:00:00Z"},"results":[{"unique_id":"a","status":"fail"},{"unique_id":"b","status":"pass"}]}`,
			`{"metadata":{"generated_at":"2026-01-02T00:00:00Z"},"results":[{"unique_id":"b","status":"fail"},{"unique_id":"c","status":"success"}]}`,
			[]string{"b=fail", "c=success", "a=fail"}},
		{"a node that ran again takes its new result",
			`{"metadata":{},"results":[{"unique_id":"a","status":"fail"}]}`,
			`{"metadata":{},"results":[{"unique_id":"a","status":"pass"}]}`,
			[]string{"a=pass"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := MergeRunResults([]byte(tc.prev), []byte(tc.next))
			if err != nil {
				t.Fatal(err)
			}
			var rr runResults
			if err := json.Unmarshal(out, &rr); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rr.Results {
				got = append(got, r.UniqueID+"="+r.Status)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("merged %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := MergeRunResults(nil, []byte(`{`)); err == nil {
		t.Error("a broken run_results.json merged without an error")
	}
}
