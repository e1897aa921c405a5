package capture

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/twmb/franz-go/pkg/kgo"
)

// laggingProducer acknowledges records in batches once inflight are unacknowledged, as the
// client's buffer (MaxBufferedRecords) and the broker's answers do: a record's buffer comes back
// for reuse thousands of records later, cold in cache, as in the running capture. (Acknowledged at
// once, one buffer went round and stayed in the first-level cache: the benchmark measured copies
// at several times their real speed.) What is measured is the capture's own work.
type laggingProducer struct {
	inflight, batch int
	recs            []*kgo.Record
	promises        []func(*kgo.Record, error)
}

func (p *laggingProducer) Produce(_ context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	p.recs, p.promises = append(p.recs, r), append(p.promises, promise)
	if len(p.recs) < p.inflight+p.batch {
		return
	}
	for i := range p.batch {
		p.promises[i](p.recs[i], nil)
	}
	p.recs = append(p.recs[:0], p.recs[p.batch:]...)
	p.promises = append(p.promises[:0], p.promises[p.batch:]...)
}

// BenchmarkSnapshotChunk is the capture's CPU for one incremental snapshot chunk of accounts
// rows, from the rows' values as the chunk read takes them (text or binary) to the records handed to the producer: the encoding of each
// row and its key, as the chunk read does it, and the chunk's emission at its high watermark.
// Reported as CPU time a row (cpu-ns/row, GC included); Postgres and Kafka are left out. go test -run '^$' -bench SnapshotChunk -benchmem ./shared/capture/
func BenchmarkSnapshotChunk(b *testing.B) {
	const rows = 4096
	cfg := Config{}.withDefaults()
	c := &capturer{cfg: cfg, producer: &laggingProducer{inflight: 16_384, batch: 1_024}, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		env: newEnvelopeWriter("fin", "fin"), tables: map[uint32]*table{}}
	// The columns in the formats a chunk read takes them in (chunkFormats): the key and the enums
	// and text as text, the rest binary.
	t := newTable("public", "accounts", "fin")
	t.keyNames = []string{"account_id"}
	for _, col := range []struct {
		name   string
		oid    uint32
		typmod int32
	}{{"account_id", oidUUID, -1}, {"customer_id", oidUUID, -1}, {"account_type", 16384, -1}, {"currency", 25, -1},
		{"nickname", 25, -1}, {"balance", oidNumeric, 18<<16 | 2 + 4}, {"status", 16390, -1},
		{"created_at", oidTimestamptz, -1}, {"updated_at", oidTimestamptz, -1}, {"version", oidInt8, -1}} {
		fd := pgconn.FieldDescription{Name: col.name, DataTypeOID: col.oid, TypeModifier: col.typmod}
		t.addResultColumn(col.name, col.oid, col.typmod, chunkFormats(nil, append(make([]pgconn.FieldDescription, chunkMeta), fd), t.keyNames)[chunkMeta])
	}
	if err := t.resolveKey(); err != nil {
		b.Fatal(err)
	}
	customer := []byte{0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x41, 0x11, 0x81, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11}
	at := binary.BigEndian.AppendUint64(nil, uint64(time.Date(2026, 12, 5, 17, 28, 23, 123456000, time.UTC).UnixMicro()-postgresEpochMicros))
	vals := make([][][]byte, rows)
	for i := range vals {
		// balance i%100000 + (i%100)/100 as numeric_send writes it: base-10000 digits.
		n, digits := i%100000, []int{i % 10000, i % 100 * 100}
		if n >= 10000 {
			digits = append([]int{n / 10000}, digits...)
		}
		balance := binary.BigEndian.AppendUint16(nil, uint16(len(digits)))
		balance = binary.BigEndian.AppendUint16(balance, uint16(len(digits)-2)) // weight
		balance = binary.BigEndian.AppendUint32(balance, 2)                     // sign 0, dscale 2
		for _, d := range digits {
			balance = binary.BigEndian.AppendUint16(balance, uint16(d))
		}
		vals[i] = [][]byte{
			fmt.Appendf(nil, "%08x-1111-4111-8111-%012x", i, i*7919), customer,
			[]byte("SAVINGS"), []byte("EUR"), fmt.Appendf(nil, "bench %d", i), balance,
			[]byte("ACTIVE"), at, at, binary.BigEndian.AppendUint64(nil, 1),
		}
	}
	var probe image
	if err := t.encode(&probe, queryCells(nil, vals[2345]), nil); err != nil {
		b.Fatal(err)
	}
	if want := `"balance":"2345.45","status":"ACTIVE","created_at":"2026-12-05T17:28:23.123456Z"`; !bytes.Contains(probe.json, []byte(want)) {
		b.Fatalf("row encoded as %s, want it to hold %s", probe.json, want)
	}
	commit := time.Date(2026, 12, 5, 17, 28, 23, 0, time.UTC)
	ch := &chunk{rows: make([]image, rows), keyEnd: make([]int, rows), dropped: make([]bool, rows)}
	var cells []cell
	b.ResetTimer()
	cpu0 := cpuTime()
	for range b.N {
		// The read: the values to the chunk's images and keys.
		ch.t, ch.n, ch.keyData = t, 0, ch.keyData[:0]
		for _, v := range vals {
			cells = queryCells(cells, v)
			if err := ch.addRow(t, cells); err != nil {
				b.Fatal(err)
			}
		}
		// The emission at the high watermark.
		c.inc = &incremental{id: "bench", pending: []*chunk{ch}}
		st := &streamState{cur: c.track.begin(commit)}
		st.src = source{commit: commit, snapshot: "false", lsn: 1 << 32, txID: 1234}
		c.closeWindow(context.Background(), st)
		c.track.commit(st.cur, 2<<32)
		c.progress = c.progress[:0]
	}
	// The process's CPU time, not the wall time, which on a shared machine mostly measures the
	// other processes.
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N*rows), "cpu-ns/row")
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
