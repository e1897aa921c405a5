package snowflakeapi

import (
	"database/sql/driver"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValue(t *testing.T) {
	plus530 := time.FixedZone("", 5*3600+30*60)
	minus8 := time.FixedZone("", -8*3600)
	tests := []struct {
		col     Column
		cell    string
		want    driver.Value
		wantErr string
	}{
		{Column{Type: "FIXED", Scale: 2}, "0.10", "0.10", ""},
		{Column{Type: "fixed"}, "-42", int64(-42), ""},
		{Column{Type: "fixed"}, "99999999999999999999", "99999999999999999999", ""}, // beyond int64: kept exact
		{Column{Type: "real"}, "1.5", 1.5, ""},
		{Column{Type: "boolean"}, "false", false, ""},
		{Column{Type: "date"}, "20417", time.Date(2025, 11, 25, 0, 0, 0, 0, time.UTC), ""},
		{Column{Type: "date"}, "-1", time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), ""},
		{Column{Type: "time", Scale: 9}, "3723.000000001", time.Date(1970, 1, 1, 1, 2, 3, 1, time.UTC), ""},
		{Column{Type: "timestamp_ntz", Scale: 3}, "1764057600.123", time.Date(2025, 11, 25, 8, 0, 0, 123000000, time.UTC), ""},
		{Column{Type: "timestamp_ltz", Scale: 9}, "-0.500000000", time.Date(1969, 12, 31, 23, 59, 59, 500000000, time.UTC), ""},
		{Column{Type: "timestamp_tz", Scale: 9}, "1764057600.000000001 1770", time.Date(2025, 11, 25, 13, 30, 0, 1, plus530), ""},
		{Column{Type: "TIMESTAMP_TZ", Scale: 0}, "1764057600 960", time.Date(2025, 11, 25, 0, 0, 0, 0, minus8), ""},
		{Column{Type: "binary"}, "cafe", []byte{0xca, 0xfe}, ""},
		{Column{Type: "variant"}, `{"a":1}`, `{"a":1}`, ""},
		{Column{Type: "timestamp_tz"}, "1764057600.0", nil, "seconds.nanos offset"},
		{Column{Type: "timestamp_ntz"}, "1764057600.1234567891", nil, "not seconds.nanos"},
		{Column{Type: "timestamp_ltz"}, "12:00", nil, "not seconds.nanos"},
		{Column{Type: "boolean"}, "yes", nil, "invalid syntax"},
	}
	for _, tc := range tests {
		t.Run(tc.col.Type+" "+tc.cell, func(t *testing.T) {
			cell := tc.cell
			got, err := tc.col.value(&cell)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("value(%q) = %v, %v; want an error saying %q", tc.cell, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("value(%q): %v", tc.cell, err)
			}
			if wt, ok := tc.want.(time.Time); ok {
				gt, _ := got.(time.Time)
				_, gotOff := gt.Zone()
				_, wantOff := wt.Zone()
				if !gt.Equal(wt) || gotOff != wantOff {
					t.Errorf("value(%q) = %v, want %v (same instant and offset)", tc.cell, got, wt)
				}
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("value(%q) = %#v, want %#v", tc.cell, got, tc.want)
			}
		})
	}
	if v, err := (Column{Type: "fixed"}).value(nil); v != nil || err != nil {
		t.Errorf("a NULL cell gave %v, %v; want nil", v, err)
	}
}

func TestBindings(t *testing.T) {
	got, err := bindings([]driver.NamedValue{{Ordinal: 1, Value: "x"}, {Ordinal: 2, Value: int64(7)}, {Ordinal: 3, Value: true}})
	want := map[string]binding{"1": {"TEXT", "x"}, "2": {"FIXED", "7"}, "3": {"BOOLEAN", "true"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("bindings = %v, %v; want %v", got, err, want)
	}
	if _, err := bindings([]driver.NamedValue{{Ordinal: 1, Value: time.Now()}}); err == nil || !strings.Contains(err.Error(), "CAST it in SQL") {
		t.Errorf("binding a time: err %v, want one saying to pass a string and CAST it", err)
	}
}
