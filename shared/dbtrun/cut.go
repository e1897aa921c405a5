package dbtrun

import (
	"bytes"
	"encoding/json"
	"time"
)

// Cut is gold's consistent cut as a build left it (docs/dbt.md, "Gold is a consistent cut"):
// every gold model shows the source database as of LSN. dbt reports it itself (the on-run-end
// macro report_cut reads gold.cut), so it comes from the warehouse the build wrote, Snowflake in
// AWS and DuckDB locally, by the same code.
type Cut struct {
	// LSN is the cut's position: the END of the last source transaction in gold (0 before the first).
	LSN int64 `json:"lsn"`
	// CommitTime is that transaction's commit time; nil before the first.
	CommitTime *time.Time `json:"commit_ts,omitempty"`
	// BuiltAt is when the build that computed the cut started.
	BuiltAt time.Time `json:"built_at"`
	// LagSeconds is BuiltAt less CommitTime: how far behind the source gold's cut was when the
	// build started (the build's wall time adds to it until it is published); nil before the first.
	LagSeconds *float64 `json:"lag_seconds,omitempty"`
}

// cutMarker starts the console line report_cut (dbt/macros/cut.sql) writes.
const cutMarker = "fin.gold_cut "

// cutWatcher reads dbt's console output as it passes and keeps the last cut reported.
type cutWatcher struct {
	line []byte
	skip bool // the current line outgrew maxCutLine: not one of ours
	cut  *Cut
}

const maxCutLine = 4 << 10

func (w *cutWatcher) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		part := p
		if i >= 0 {
			part = p[:i]
		}
		if !w.skip {
			w.line = append(w.line, part...)
			if len(w.line) > maxCutLine {
				w.line, w.skip = w.line[:0], true
			}
		}
		if i < 0 {
			break
		}
		if !w.skip {
			w.scan(w.line)
		}
		w.line, w.skip = w.line[:0], false
		p = p[i+1:]
	}
	return n, nil
}

// scan takes a cut from one console line: dbt's text format ("12:00:01  fin.gold_cut {...}") or
// its JSON format (DBT_LOG_FORMAT=json: the line in info.msg).
func (w *cutWatcher) scan(line []byte) {
	var logged struct {
		Info struct {
			Msg string `json:"msg"`
		} `json:"info"`
	}
	if json.Unmarshal(line, &logged) == nil && logged.Info.Msg != "" {
		line = []byte(logged.Info.Msg)
	}
	i := bytes.Index(line, []byte(cutMarker))
	if i < 0 {
		return
	}
	var got struct {
		LSN        *int64 `json:"lsn"`
		CommitTsUs *int64 `json:"commit_ts_us"`
		BuiltAtUs  *int64 `json:"built_at_us"`
	}
	if json.Unmarshal(line[i+len(cutMarker):], &got) != nil || got.LSN == nil || got.BuiltAtUs == nil {
		return
	}
	c := &Cut{LSN: *got.LSN, BuiltAt: time.UnixMicro(*got.BuiltAtUs).UTC()}
	if got.CommitTsUs != nil {
		t := time.UnixMicro(*got.CommitTsUs).UTC()
		lag := c.BuiltAt.Sub(t).Seconds()
		c.CommitTime, c.LagSeconds = &t, &lag
	}
	w.cut = c
}
