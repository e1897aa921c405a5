package snowflake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze/bronzetest"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
)

// hostileKeys are keys the bronze grammar refuses; the escaping must hold for them on its own.
var hostileKeys = []string{
	"bronze/accounts/dt=2026-11-25/it's.parquet",
	`bronze/accounts/dt=2026-11-25/back\slash.parquet`,
	`bronze/accounts/dt=2026-11-25/ends in a backslash\`,
	`bronze/accounts/dt=2026-11-25/\'); DROP TABLE RAW.ACCOUNTS; --.parquet`,
	"bronze/accounts/dt=2026-11-25/x'); DROP TABLE RAW.ACCOUNTS; --.parquet",
	"bronze/accounts/dt=2026-11-25/$$) FILES = ('other.parquet') $$.parquet",
	"bronze/accounts/dt=2026-11-25/new\nline\r\n\ttab.parquet",
	"bronze/accounts/dt=2026-11-25/nul\x00bell\x07del\x7f.parquet",
	"bronze/accounts/dt=2026-11-25/ünïcødé ☃ 𝄞 \u2028.parquet",
	`''''\\\\''`,
	"",
}

// unquote reads one Snowflake string constant from the start of sql, by the SQL reference's
// rules for single-quoted constants, and returns its value and what follows it.
func unquote(t *testing.T, sql string) (value, rest string) {
	t.Helper()
	if !strings.HasPrefix(sql, "'") {
		t.Fatalf("%q does not start with a quote", sql)
	}
	var b strings.Builder
	for i := 1; i < len(sql); i++ {
		switch c := sql[i]; {
		case c == '\'' && i+1 < len(sql) && sql[i+1] == '\'':
			b.WriteByte('\'')
			i++
		case c == '\'':
			return b.String(), sql[i+1:]
		case c == '\\' && i+1 < len(sql):
			i++
			switch e := sql[i]; e {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case '0':
				b.WriteByte(0)
			case 'x':
				v, err := strconv.ParseUint(sql[i+1:i+3], 16, 8)
				if err != nil {
					t.Fatalf("bad \\x escape in %q", sql)
				}
				b.WriteRune(rune(v))
				i += 2
			default: // \\, \', \" and any other character stand for themselves
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	t.Fatalf("%q: the string constant never ends", sql)
	return "", ""
}

func TestLiteralEscapesBySnowflakesRules(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", `'plain'`},
		{"it's", `'it''s'`},
		{`a\b`, `'a\\b'`},
		{`\'`, `'\\'''`},
		{"a$$b", `'a$$b'`},
		{"l1\nl2\r\t", `'l1\nl2\r\t'`},
		{"\x00\x07\x1f\x7f", `'\0\x07\x1f\x7f'`},
		{"é☃𝄞", `'é☃𝄞'`},
	} {
		if got, err := literal(tc.in); err != nil || got != tc.want {
			t.Errorf("literal(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for _, key := range hostileKeys {
		lit, err := literal(key)
		if err != nil {
			t.Fatalf("literal(%q): %v", key, err)
		}
		if v, rest := unquote(t, lit); v != key || rest != "" {
			t.Errorf("literal(%q) = %s reads back as %q followed by %q: the constant must hold the key and end where it ends", key, lit, v, rest)
		}
		if strings.ContainsAny(lit, "\n\r\x00") {
			t.Errorf("literal(%q) = %q holds a raw control character", key, lit)
		}
	}
	if _, err := literal("bronze/\xff.parquet"); err == nil {
		t.Error("a key that is not UTF-8 was written as a literal")
	}
}

// The key can change the COPY statement's values, never its shape: with each literal read
// back as one constant, what is left is the statement of a plain key.
func TestCopyStatementHoldsHostileKeysAsConstants(t *testing.T) {
	w := &Warehouse{cfg: Config{Stage: "RAW.BRONZE_STAGE"}, schema: "RAW"}
	plain, err := w.copyStatement(warehouse.Object{Key: "K", Table: "accounts"}, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range hostileKeys {
		stmt, err := w.copyStatement(warehouse.Object{Key: key, Table: "accounts"}, true)
		if err != nil {
			t.Fatalf("copyStatement(%q): %v", key, err)
		}
		// Read the statement with Snowflake's rules, replacing every constant's value by K.
		var shape strings.Builder
		for rest := stmt; rest != ""; {
			i := strings.IndexByte(rest, '\'')
			if i < 0 {
				shape.WriteString(rest)
				break
			}
			shape.WriteString(rest[:i])
			v, after := unquote(t, rest[i:])
			if v != key {
				t.Fatalf("COPY for %q holds the constant %q", key, v)
			}
			shape.WriteString("'K'")
			rest = after
		}
		if shape.String() != plain {
			t.Errorf("COPY for key %q has another shape:\n%s\nwant:\n%s", key, shape.String(), plain)
		}
	}
}

func TestCheckKeyRefusesBeforeSQL(t *testing.T) {
	good := bronzetest.KeyAt("accounts", 1, 2)
	for _, tc := range []struct {
		key, table, part string
	}{
		{good, "accounts", ""},
		{good, "customers", "table"},
		{hostileKeys[3], "accounts", "file name"},
		{hostileKeys[6], "accounts", "file name"},
	} {
		err := checkKey(tc.key, tc.table)
		var ke *bronze.KeyError
		if tc.part == "" && err != nil || tc.part != "" && (!errors.As(err, &ke) || ke.Part != tc.part) {
			t.Errorf("checkKey(%q, %q) = %v; want the %q part named (empty: accepted)", tc.key, tc.table, err, tc.part)
		}
	}
	w := &Warehouse{cfg: Config{Tables: []string{"accounts"}}}
	// No connection at all: a refused key must fail before the warehouse is touched.
	if _, err := w.Loaded(context.Background(), hostileKeys[4], "e"); !errors.As(err, new(*bronze.KeyError)) {
		t.Errorf("Loaded with a hostile key: %v, want a *bronze.KeyError", err)
	}
	if _, err := w.Load(context.Background(), warehouse.Object{Key: hostileKeys[4], ETag: "e", Table: "accounts"}); !errors.As(err, new(*bronze.KeyError)) {
		t.Errorf("Load with a hostile key: %v, want a *bronze.KeyError", err)
	}
}

func TestObjectNames(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parts int
		ok    bool
	}{
		{"RAW", 2, true}, {"FIN.RAW", 2, true}, {"RAW.BRONZE_STAGE", 3, true}, {"DB.RAW.STAGE$1", 3, true},
		{"A.B.C", 2, false}, {"", 1, false}, {"RAW;DROP", 2, false}, {`"RAW"`, 2, false}, {"RAW.", 2, false},
		{"1RAW", 2, false}, {"RAW STAGE", 3, false}, {"RAW\n", 2, false},
	} {
		if got := objectName(tc.name, tc.parts); got != tc.ok {
			t.Errorf("objectName(%q, %d) = %v, want %v", tc.name, tc.parts, got, tc.ok)
		}
	}
}

// A load that found no rows tells a gone object (nothing to load) from one that exists.
func TestNothingLoaded(t *testing.T) {
	w := &Warehouse{cfg: Config{Stage: "RAW.BRONZE_STAGE"}}
	gone := errors.New("object not found")
	for _, tc := range []struct {
		name      string
		fetch     func(ctx context.Context, w io.Writer) (string, error)
		nothing   bool // wraps warehouse.ErrNothingLoaded
		wantInErr string
	}{
		{"object exists", func(ctx context.Context, w io.Writer) (string, error) {
			_, err := w.Write(make([]byte, 1234))
			return `"abc"`, err
		}, true, "1234 bytes, ETag abc"},
		{"object gone", func(ctx context.Context, w io.Writer) (string, error) {
			return "", fmt.Errorf("s3://lake/k: %w", gone)
		}, false, "cannot be read: s3://lake/k: object not found"},
		{"no reader", nil, true, "@RAW.BRONZE_STAGE loaded no rows"},
	} {
		err := w.nothingLoaded(context.Background(), warehouse.Object{Key: "k", Fetch: tc.fetch})
		if errors.Is(err, warehouse.ErrNothingLoaded) != tc.nothing || !strings.Contains(err.Error(), tc.wantInErr) {
			t.Errorf("%s: %v; want ErrNothingLoaded %v and %q", tc.name, err, tc.nothing, tc.wantInErr)
		}
		if !tc.nothing && !errors.Is(err, gone) {
			t.Errorf("%s: %v does not wrap the reader's error", tc.name, err)
		}
	}
}
