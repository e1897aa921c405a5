package bronze

import (
	"errors"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var src = SourceID("arn:aws:kafka:eu-west-1:1:cluster/c/u")

func TestObjectKeyRoundTrip(t *testing.T) {
	commit := time.Date(2026, 11, 25, 23, 59, 59, 0, time.FixedZone("X", -3600))
	key := ObjectKey("accounts", src, "fin.public.accounts", 0, 10, 99, commit)
	want := "bronze/accounts/dt=2026-11-26/fin.public.accounts-0-10-99-" + src + ".parquet"
	if key != want {
		t.Fatalf("ObjectKey = %q, want %q", key, want)
	}
	k, err := ParseKey(key)
	wantKey := Key{Table: "accounts", Date: "2026-11-26", Topic: "fin.public.accounts", First: 10, Last: 99, Source: src}
	if err != nil || k != wantKey {
		t.Fatalf("ParseKey(%q) = %+v, %v; want %+v", key, k, err, wantKey)
	}
}

func TestParseKey(t *testing.T) {
	good := "bronze/accounts/dt=2026-11-25/fin.public.accounts-0-10-99-" + src + ".parquet"
	for _, tc := range []struct {
		name, key string
		part      string // "" when the key is accepted
	}{
		{"landed object", good, ""},
		{"topic with dashes and no prefix", "bronze/t_1/dt=2026-02-28/my-cluster.t_1-2147483647-0-9223372036854775807-0123abcd.parquet", ""},
		{"topic is the table", "bronze/accounts/dt=2024-02-29/accounts-3-5-5-" + src + ".parquet", ""},
		{"dead letter", "dlq/fin.public.accounts/" + src + "-0-5.json", "prefix"},
		{"other folder", "other/accounts/dt=2026-01-01/a.parquet", "prefix"},
		{"upper-case prefix", "Bronze/accounts/dt=2026-01-01/accounts-0-0-0-" + src + ".parquet", "prefix"},
		{"no date folder", "bronze/accounts/x.parquet", "layout"},
		{"extra folder", "bronze/accounts/dt=2026-11-25/x/fin.public.accounts-0-10-99-" + src + ".parquet", "layout"},
		{"empty table", "bronze//dt=2026-01-01/a.parquet", "table"},
		{"upper-case table", "bronze/Accounts/dt=2026-11-25/fin.public.Accounts-0-1-2-" + src + ".parquet", "table"},
		{"table starting with a digit", "bronze/1x/dt=2026-11-25/fin.public.1x-0-1-2-" + src + ".parquet", "table"},
		{"quote in table", "bronze/a'b/dt=2026-11-25/fin.public.a'b-0-1-2-" + src + ".parquet", "table"},
		{"table too long", "bronze/" + strings.Repeat("a", 64) + "/dt=2026-11-25/" + strings.Repeat("a", 64) + "-0-1-2-" + src + ".parquet", "table"},
		{"no dt=", "bronze/accounts/2026-11-25/fin.public.accounts-0-10-99-" + src + ".parquet", "date"},
		{"not a calendar date", "bronze/accounts/dt=2026-02-30/fin.public.accounts-0-10-99-" + src + ".parquet", "date"},
		{"date without zero padding", "bronze/accounts/dt=2026-1-05/fin.public.accounts-0-10-99-" + src + ".parquet", "date"},
		{"date with time", "bronze/accounts/dt=2026-11-25T00/fin.public.accounts-0-10-99-" + src + ".parquet", "date"},
		{"not parquet", "bronze/accounts/dt=2026-01-01/a.json", "file name"},
		{"stray file", "bronze/customers/dt=2026-01-01/stray.parquet", "file name"},
		{"too few fields", "bronze/accounts/dt=2026-11-25/fin.public.accounts-10-99-" + src + ".parquet", "file name"},
		{"topic of another table", "bronze/accounts/dt=2026-11-25/fin.public.customers-0-10-99-" + src + ".parquet", "topic"},
		{"topic with a space", "bronze/accounts/dt=2026-11-25/fin public.accounts-0-10-99-" + src + ".parquet", "topic"},
		{"topic with a newline", "bronze/accounts/dt=2026-11-25/fin\n.accounts-0-10-99-" + src + ".parquet", "topic"},
		{"topic with a backslash", "bronze/accounts/dt=2026-11-25/fin\\.accounts-0-10-99-" + src + ".parquet", "topic"},
		{"topic with unicode", "bronze/accounts/dt=2026-11-25/fïn.accounts-0-10-99-" + src + ".parquet", "topic"},
		{"topic with $$", "bronze/accounts/dt=2026-11-25/$$.accounts-0-10-99-" + src + ".parquet", "topic"},
		{"topic too long", "bronze/accounts/dt=2026-11-25/" + strings.Repeat("x", 241) + ".accounts-0-10-99-" + src + ".parquet", "topic"},
		{"negative partition", "bronze/accounts/dt=2026-11-25/fin.public.accounts--1-10-99-" + src + ".parquet", "topic"},
		{"partition with leading zero", "bronze/accounts/dt=2026-11-25/fin.public.accounts-01-10-99-" + src + ".parquet", "partition"},
		{"partition past int32", "bronze/accounts/dt=2026-11-25/fin.public.accounts-2147483648-10-99-" + src + ".parquet", "partition"},
		{"partition with sign", "bronze/accounts/dt=2026-11-25/fin.public.accounts-+1-10-99-" + src + ".parquet", "partition"},
		{"empty first offset", "bronze/accounts/dt=2026-11-25/fin.public.accounts-0--99-" + src + ".parquet", "first offset"},
		{"first offset past int64", "bronze/accounts/dt=2026-11-25/fin.public.accounts-0-9223372036854775808-99-" + src + ".parquet", "first offset"},
		{"last offset before first", "bronze/accounts/dt=2026-11-25/fin.public.accounts-0-100-99-" + src + ".parquet", "last offset"},
		{"last offset with space", "bronze/accounts/dt=2026-11-25/fin.public.accounts-0-10-9 9-" + src + ".parquet", "last offset"},
		{"source of the test fixtures before", "bronze/accounts/dt=2026-11-25/fin.public.accounts-0-10-99-test.parquet", "source"},
		{"upper-case source", "bronze/accounts/dt=2026-11-25/fin.public.accounts-0-10-99-" + strings.ToUpper("abcdef01") + ".parquet", "source"},
		{"source with a quote", "bronze/accounts/dt=2026-11-25/fin.public.accounts-0-10-99-abcdef0'.parquet", "source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseKey(tc.key)
			if tc.part == "" {
				if err != nil {
					t.Fatalf("ParseKey(%q): %v; want it accepted", tc.key, err)
				}
				if k.String() != tc.key {
					t.Fatalf("ParseKey(%q).String() = %q", tc.key, k.String())
				}
				return
			}
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("ParseKey(%q) = %+v, %v; want a *KeyError about the %s", tc.key, k, err, tc.part)
			}
			if ke.Part != tc.part || ke.Key != tc.key || ke.Reason == "" || !strings.Contains(err.Error(), tc.part+": ") {
				t.Fatalf("ParseKey(%q): %v (part %q); want the %s named as what is wrong", tc.key, err, ke.Part, tc.part)
			}
		})
	}
}

func TestSourceIDIsStableAndDistinct(t *testing.T) {
	a, b := SourceID("arn:aws:kafka:x:1:cluster/a/1"), SourceID("arn:aws:kafka:x:1:cluster/b/2")
	if a != SourceID("arn:aws:kafka:x:1:cluster/a/1") || a == b || len(a) != 8 {
		t.Fatalf("SourceID: %q, %q", a, b)
	}
}

// The fuzz tests' oracle is the grammar of Key's doc comment written again, as one regular
// expression and range checks: ParseKey (a hand-written parser) must agree with it.
var keyGrammar = regexp.MustCompile(`^bronze/([a-z_][a-z0-9_]{0,62})/dt=([0-9]{4}-[0-9]{2}-[0-9]{2})/` +
	`([a-zA-Z0-9._-]{1,249})-(0|[1-9][0-9]*)-(0|[1-9][0-9]*)-(0|[1-9][0-9]*)-([0-9a-f]{8})\.parquet$`)

// The domain of ObjectKey's parts, as the landing gives them.
var (
	tableName  = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	topicName  = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
	sourceName = regexp.MustCompile(`^[0-9a-f]{8}$`)
)

func grammarAccepts(key string) bool {
	m := keyGrammar.FindStringSubmatch(key)
	if m == nil {
		return false
	}
	table, date, topic := m[1], m[2], m[3]
	if d, err := time.Parse("2006-01-02", date); err != nil || d.Format("2006-01-02") != date {
		return false
	}
	if topic != table && !strings.HasSuffix(topic, "."+table) {
		return false
	}
	p, errP := strconv.ParseInt(m[4], 10, 64)
	first, errF := strconv.ParseInt(m[5], 10, 64)
	last, errL := strconv.ParseInt(m[6], 10, 64)
	return errP == nil && errF == nil && errL == nil && p <= math.MaxInt32 && first <= last
}

var seedKeys = []string{
	"bronze/accounts/dt=2026-11-25/fin.public.accounts-0-10-99-0123abcd.parquet",
	"bronze/t/dt=0001-01-01/a-b.t-1-0-0-ffffffff.parquet",
	"bronze/accounts/dt=2026-11-25/fin.public.accounts-0-10-99-test.parquet",
	"bronze/accounts/dt=2026-11-25/fin.public.customers-0-10-99-0123abcd.parquet",
	"bronze/accounts/dt=2026-11-25/fin.public.accounts-00-10-99-0123abcd.parquet",
	"bronze/accounts/dt=2026-13-25/fin.public.accounts-0-10-99-0123abcd.parquet",
	"bronze/accounts/dt=2026-11-25/fin.public.accounts-0-99-10-0123abcd.parquet",
	"bronze/accounts/dt=2026-11-25/x/fin.public.accounts-0-10-99-0123abcd.parquet",
	"bronze/a'); DROP TABLE raw.accounts; --/dt=2026-11-25/x.parquet",
	"bronze/accounts/dt=2026-11-25/fin.public.accounts-0-10-99-0123abcd.parquet\n",
	"bronze/accounts/dt=2026-11-25/fin\\'.accounts-0-10-99-0123abcd.parquet",
	"bronze/accounts/dt=2026-11-25/$$.accounts-0-1-2-0123abcd.parquet",
	"bronze/accounts/dt=2026-11-25/fïn.accounts-0-1-2-0123abcd.parquet",
	"dlq/fin.public.accounts/0123abcd-0-5.json",
	"",
}

// FuzzParseKey: every key ParseKey accepts is what ObjectKey writes for its parts, and the
// grammar's oracle agrees on every input. `go test` runs the seeds; `go test -fuzz FuzzParseKey`
// searches further.
func FuzzParseKey(f *testing.F) {
	for _, s := range seedKeys {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		k, err := ParseKey(key)
		if want := grammarAccepts(key); (err == nil) != want {
			t.Fatalf("ParseKey(%q) = %+v, %v; the grammar says accepted=%v", key, k, err, want)
		}
		if err != nil {
			var ke *KeyError
			if !errors.As(err, &ke) || ke.Part == "" || ke.Reason == "" {
				t.Fatalf("ParseKey(%q): %v; want a *KeyError naming the part", key, err)
			}
			return
		}
		d, _ := time.Parse("2006-01-02", k.Date)
		if got := ObjectKey(k.Table, k.Source, k.Topic, k.Partition, k.First, k.Last, d.Add(13*time.Hour)); got != key {
			t.Fatalf("ParseKey(%q) = %+v, but ObjectKey of those parts is %q", key, k, got)
		}
	})
}

// FuzzObjectKey: ObjectKey of parts the landing can give (the oracle's domain) is accepted by
// ParseKey and gives those parts back. With FuzzParseKey: ParseKey accepts exactly the keys
// ObjectKey can write.
func FuzzObjectKey(f *testing.F) {
	f.Add("accounts", "fin.public.accounts", src, int32(0), int64(10), int64(99), int64(1795262400))
	f.Add("t", "t", "00000000", int32(math.MaxInt32), int64(0), int64(math.MaxInt64), int64(-62135596800))
	f.Add("accounts", "fin.public.customers", src, int32(0), int64(0), int64(0), int64(0))
	f.Add("accounts", "fin.public.accounts", "test", int32(-1), int64(5), int64(4), int64(253402300800))
	f.Add("a", "x-1.a", "1.b-1-2-3-abcdef01", int32(1), int64(2), int64(3), int64(0))
	f.Fuzz(func(t *testing.T, table, topic, source string, partition int32, first, last, unix int64) {
		commit := time.Unix(unix, 0).UTC()
		key := ObjectKey(table, source, topic, partition, first, last, commit)
		k, err := ParseKey(key)
		valid := tableName.MatchString(table) && topicName.MatchString(topic) &&
			(topic == table || strings.HasSuffix(topic, "."+table)) && sourceName.MatchString(source) &&
			partition >= 0 && first >= 0 && first <= last && commit.Year() >= 0 && commit.Year() <= 9999
		if !valid {
			// Parts the landing cannot give may still spell another valid key (FuzzParseKey
			// holds that one to ObjectKey); they must never spell a key that parses wrong.
			if err == nil && k.String() != key {
				t.Fatalf("ParseKey(%q) = %+v, which does not spell the key", key, k)
			}
			return
		}
		want := Key{Table: table, Date: commit.Format("2006-01-02"), Topic: topic, Partition: partition, First: first, Last: last, Source: source}
		if err != nil || k != want {
			t.Fatalf("ParseKey(ObjectKey(%+v)) = %+v, %v", want, k, err)
		}
	})
}
