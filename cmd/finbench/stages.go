package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// stageTimes splits each posting's commit -> seen in raw.transactions into what the lake's rows
// say about it: the capture (commit -> the event's ts_ms), its batch (-> the newest event of the
// bronze object it landed in: the rest of the batch still being captured), the landing and the
// loader's queue (-> the load's _loaded_at: the batching window's remainder, the Parquet write,
// the S3 event and the loads before it) and the load itself with the poll (-> first seen).
type stageTimes struct {
	capture, batch, queue, load []time.Duration
	objects                     map[string]int // rows of the postings per bronze object
}

// readStages reads the event times and objects of the tag's postings from RAW and splits the
// delay of those in ids that skip does not leave out.
func readStages(ctx context.Context, url, token, tag string, s *seenSet, ids []uuid.UUID, skip func(seenRow) bool) (stageTimes, error) {
	var buf bytes.Buffer
	q := fmt.Sprintf(`SELECT json_extract_string(after, '$.transaction_id'), event_ts_ms, _object_key
		FROM raw.transactions WHERE op IN ('c', 'r') AND json_extract_string(after, '$.description') = '%s'`, tag)
	if err := duckdb.PostQuery(ctx, url, token, q, &buf); err != nil {
		return stageTimes{}, fmt.Errorf("stages: %w", err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(rows) == 0 {
		return stageTimes{}, fmt.Errorf("stages: read the answer: %v", err)
	}
	type row struct {
		event time.Time
		key   string
	}
	byID := map[uuid.UUID]row{}
	newest := map[string]time.Time{}
	st := stageTimes{objects: map[string]int{}}
	for _, r := range rows[1:] {
		id, err1 := uuid.Parse(r[0])
		ms, err2 := strconv.ParseInt(r[1], 10, 64)
		if err1 != nil || err2 != nil {
			return st, fmt.Errorf("stages: row %q", strings.Join(r, ","))
		}
		ev := time.UnixMilli(ms)
		byID[id] = row{ev, r[2]}
		if ev.After(newest[r[2]]) {
			newest[r[2]] = ev
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		sr, ok1 := s.rows[id]
		r, ok2 := byID[id]
		if !ok1 || !ok2 || skip != nil && skip(sr) {
			continue
		}
		st.objects[r.key]++
		last := newest[r.key]
		st.capture = append(st.capture, r.event.Sub(sr.commit))
		st.batch = append(st.batch, last.Sub(r.event))
		st.queue = append(st.queue, sr.loaded.Sub(last))
		st.load = append(st.load, sr.seen.Sub(sr.loaded))
	}
	return st, nil
}

// print writes the stages' p50 / p95 on one line each.
func (st stageTimes) print(label string) {
	f := func(d []time.Duration) string {
		s := summarize(d)
		return fmt.Sprintf("%.2f / %.2f", s.p50.Seconds(), s.p95.Seconds())
	}
	fmt.Printf("    stages, %s (p50 / p95 s, %d postings in %d objects): capture %s | batch %s | window rest, landing, loader queue %s | load and poll %s\n",
		label, len(st.capture), len(st.objects), f(st.capture), f(st.batch), f(st.queue), f(st.load))
}
