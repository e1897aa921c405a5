package capture

import (
	"context"
	"strings"
	"testing"

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
