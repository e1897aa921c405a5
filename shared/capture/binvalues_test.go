package capture

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fin-orchestrator/fin-orchestrator/shared/pgtest"
)

// A chunk read takes some columns in binary: each value must come out exactly as its text form
// does (what the stream and Debezium give), or as the same failure. Postgres writes both forms
// of every value here, edge values included.
func TestBinaryValuesMatchText(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	columns := []struct{ name, typ string }{
		{"b", "bool"}, {"i2", "int2"}, {"i4", "int4"}, {"i8", "int8"}, {"u", "uuid"},
		{"n", "numeric"}, {"money", "numeric(18,2)"}, {"ts", "timestamptz"}, {"ts3", "timestamptz(3)"}, {"ts0", "timestamptz(0)"},
	}
	var defs []string
	for _, c := range columns {
		defs = append(defs, c.name+" "+c.typ)
	}
	if _, err := db.Pool.Exec(ctx, "CREATE TABLE forms (id int PRIMARY KEY, "+strings.Join(defs, ", ")+")"); err != nil {
		t.Fatal(err)
	}
	values := map[string][]string{
		"b":  {"true", "false"},
		"i2": {"-32768", "0", "32767"},
		"i4": {"-2147483648", "7", "2147483647"},
		"i8": {"-9223372036854775808", "9007199254740993", "9223372036854775807"},
		"u":  {"00000000-0000-0000-0000-000000000000", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "ffffffff-ffff-ffff-ffff-ffffffffffff"},
		"n": {"0", "0.00", "-0.5", "1234.50", "12345678901234.99", "0.0001", "0.00001234", "100000000", "-99999999.9999",
			"1e-20", "123456789012345678901234567890.123456789", "10000", "9999.9999", "0.1", "-1", "NaN", "Infinity", "-Infinity"},
		"money": {"0", "1234.5", "-0.01", "9999999999999999.99", "100"},
		"ts": {"2026-12-05 17:28:23.123456+00", "2024-02-29 23:59:59+00", "2000-01-01 00:00:00+00", "1999-12-31 23:59:59.999999+00",
			"1970-01-01 00:00:00+00", "1969-12-31 23:59:59.5+00", "0001-01-01 00:00:00+00", "9999-12-31 23:59:59.999999+00",
			"1900-06-30 12:00:00.5+02", "infinity", "-infinity", "10000-01-01 00:00:00+00", "0044-03-15 12:00:00+00 BC"},
		"ts3": {"2024-06-30 21:59:59.1239+00", "2024-06-30 21:59:59+00"},
		"ts0": {"2024-06-30 21:59:59.6+00", "2024-06-30 21:59:59+00"},
	}
	id := 0
	for col, vals := range values {
		for _, v := range vals {
			id++
			if _, err := db.Pool.Exec(ctx, "INSERT INTO forms (id, "+col+") VALUES ($1, $2)", id, v); err != nil {
				t.Fatalf("insert %s %q: %v", col, v, err)
			}
		}
	}

	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	sd, err := conn.PgConn().Prepare(ctx, "", "SELECT (SELECT pg_current_snapshot()::text), (SELECT pg_current_wal_insert_lsn()::text), xmax::text, * FROM forms ORDER BY id", nil)
	if err != nil {
		t.Fatal(err)
	}
	formats := chunkFormats(nil, sd.Fields, []string{"id"})
	for _, f := range formats[:chunkMeta+1] {
		if f != pgx.TextFormatCode {
			t.Fatalf("the read's snapshot, position, xmax and the key must come as text, formats %v", formats)
		}
	}
	for i, f := range formats[chunkMeta+1:] {
		if f != pgx.BinaryFormatCode {
			t.Fatalf("column %s is read as text, want binary", columns[i].name)
		}
	}
	read := func(formats []int16) [][][]byte {
		rr := conn.PgConn().ExecStatement(ctx, sd, nil, nil, formats)
		var rows [][][]byte
		for rr.NextRow() {
			var row [][]byte
			for _, v := range rr.Values() {
				row = append(row, append([]byte(nil), v...))
			}
			rows = append(rows, row)
		}
		if _, err := rr.Close(); err != nil {
			t.Fatal(err)
		}
		return rows
	}
	text, bin := read(nil), read(formats)
	compared, failed := 0, 0
	for r := range text {
		for c := chunkMeta + 1; c < len(sd.Fields); c++ {
			if text[r][c] == nil {
				continue
			}
			fd := sd.Fields[c]
			want, wantErr := encoderFor(fd.DataTypeOID, fd.TypeModifier)(nil, text[r][c])
			got, gotErr := binaryEncoderFor(fd.DataTypeOID, fd.TypeModifier)(nil, bin[r][c])
			compared++
			switch {
			case wantErr != nil || gotErr != nil:
				failed++
				if (wantErr == nil) != (gotErr == nil) {
					t.Errorf("%s %q: text error %v, binary error %v", fd.Name, text[r][c], wantErr, gotErr)
				}
			case string(got) != string(want):
				t.Errorf("%s %q: binary gives %s, text %s", fd.Name, text[r][c], got, want)
			}
		}
	}
	if compared != id || failed != 2 {
		t.Errorf("compared %d values of %d, %d failing both ways (want the two years outside 1-9999)", compared, id, failed)
	}
}

// One timestamptz encoder writes a chunk's values in turn and keeps the last date: a value of
// another day, before or after it, before Postgres's epoch or Unix's, must not take the kept
// date. Each value is also written by an encoder of its own and by time's own formatting.
func TestBinaryTimestamptzKeepsNoStaleDate(t *testing.T) {
	at := func(s string) int64 {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v.UnixMicro() - postgresEpochMicros
	}
	var values []int64
	for _, s := range []string{"2026-12-05T17:28:23.123456Z", "2026-12-05T23:59:59.999999Z", "2026-12-06T00:00:00Z",
		"2026-12-05T00:00:00.000001Z", "2000-01-01T00:00:00Z", "1999-12-31T23:59:59.999999Z", "1999-12-31T00:00:00Z",
		"1970-01-01T00:00:00Z", "1969-12-31T23:59:59.5Z", "2024-02-29T12:00:00Z", "2024-03-01T12:00:00Z", "0001-01-01T00:00:00Z",
		"9999-12-31T23:59:59.999999Z", "2026-12-07T08:00:00Z"} {
		values = append(values, at(s))
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		// Runs of the same day and jumps across days, as rows in key order give them.
		values = append(values, values[len(values)-1]+rnd.Int64N(4*3600_000_000)-2*3600_000_000)
		if rnd.IntN(50) == 0 {
			values = append(values, at("1990-01-01T00:00:00Z")+rnd.Int64N(40*365*microsPerDay))
		}
	}
	for _, width := range []int{6, 3} { // timestamptz(0) holds no fraction: Postgres rounds it away
		shared := binaryEncoderFor(oidTimestamptz, int32(width))
		for _, us := range values {
			b := binary.BigEndian.AppendUint64(nil, uint64(us))
			got, err := shared(nil, b)
			if err != nil {
				t.Fatal(err)
			}
			alone, err := binaryEncoderFor(oidTimestamptz, int32(width))(nil, b)
			if err != nil {
				t.Fatal(err)
			}
			layout := `"2006-01-02T15:04:05`
			if width > 0 {
				layout += "." + strings.Repeat("0", width)
			}
			want := time.UnixMicro(us + postgresEpochMicros).UTC().Format(layout + `Z"`)
			if string(got) != want || string(alone) != want {
				t.Fatalf("width %d, %d µs: the encoder after others wrote %s, alone %s, want %s", width, us, got, alone, want)
			}
		}
	}
}
