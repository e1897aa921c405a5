package snowflakeapi

import (
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Column is one column of a result, as resultSetMetaData.rowType describes it.
type Column struct {
	Name      string `json:"name"`
	Type      string `json:"type"` // fixed, real, text, boolean, date, time, timestamp_ntz/ltz/tz, binary, variant, ...
	Scale     int    `json:"scale"`
	Precision int    `json:"precision"`
	Nullable  bool   `json:"nullable"`
}

// value converts one cell of the jsonv2 format (every value is a string; SQL NULL is null) to
// what database/sql scans from:
//
//	FIXED scale 0      int64 (a string when it exceeds int64)
//	FIXED scale > 0    the decimal string as sent: exact, never through a float
//	REAL               float64
//	BOOLEAN            bool
//	DATE               time.Time, midnight UTC (sent as days since the epoch)
//	TIME               time.Time on 1970-01-01 UTC (sent as seconds since midnight)
//	TIMESTAMP_NTZ      time.Time in UTC holding the wallclock (sent as "seconds.nanos")
//	TIMESTAMP_LTZ      time.Time in UTC (the instant; sent as "seconds.nanos")
//	TIMESTAMP_TZ       time.Time in the value's own offset (sent as "seconds.nanos offset", where
//	                   offset is the offset in minutes plus 1440)
//	BINARY             []byte (sent as hex)
//	anything else      string (TEXT, VARIANT, OBJECT, ARRAY, DECFLOAT, GEOGRAPHY, ...)
func (c Column) value(cell *string) (driver.Value, error) {
	if cell == nil {
		return nil, nil
	}
	s := *cell
	switch strings.ToLower(c.Type) {
	case "fixed", "number":
		if c.Scale != 0 {
			return s, nil
		}
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n, nil
		}
		return s, nil
	case "real", "float", "double":
		return strconv.ParseFloat(s, 64)
	case "boolean":
		return strconv.ParseBool(s)
	case "date":
		days, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, err
		}
		return time.Unix(days*86400, 0).UTC(), nil
	case "time", "timestamp_ntz", "timestamp_ltz":
		return epoch(s)
	case "timestamp_tz":
		secs, offset, ok := strings.Cut(s, " ")
		if !ok {
			return nil, errors.New("want \"seconds.nanos offset\"")
		}
		t, err := epoch(secs)
		if err != nil {
			return nil, err
		}
		m, err := strconv.Atoi(offset)
		if err != nil {
			return nil, fmt.Errorf("offset %q: %w", offset, err)
		}
		minutes := m - 1440
		if minutes == 0 {
			return t, nil
		}
		return t.In(time.FixedZone("", minutes*60)), nil
	case "binary":
		return hex.DecodeString(s)
	}
	return s, nil
}

// epoch parses "seconds[.fraction]" since the Unix epoch exactly (no float): the fraction has as
// many digits as the column's scale, at most 9.
func epoch(s string) (time.Time, error) {
	whole, frac, _ := strings.Cut(s, ".")
	neg := strings.HasPrefix(whole, "-")
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || len(frac) > 9 {
		return time.Time{}, fmt.Errorf("%q is not seconds.nanos since the epoch", s)
	}
	var nanos int64
	if frac != "" {
		if nanos, err = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64); err != nil || nanos < 0 {
			return time.Time{}, fmt.Errorf("%q is not seconds.nanos since the epoch", s)
		}
	}
	if neg { // -1.5 is minus one and a half seconds
		nanos = -nanos
	}
	return time.Unix(sec, nanos).UTC(), nil
}

// binding is one bind variable as the SQL API takes it: a Snowflake type and the value as text.
type binding struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// bindings numbers the arguments from "1" as the statement's ? placeholders are. Times are not
// bound (how the session reads them depends on its settings): pass an ISO string and CAST it.
func bindings(args []driver.NamedValue) (map[string]binding, error) {
	if len(args) == 0 {
		return nil, nil
	}
	out := make(map[string]binding, len(args))
	for _, a := range args {
		var b binding
		switch v := a.Value.(type) {
		case string:
			b = binding{"TEXT", v}
		case int64:
			b = binding{"FIXED", strconv.FormatInt(v, 10)}
		case bool:
			b = binding{"BOOLEAN", strconv.FormatBool(v)}
		case float64:
			b = binding{"REAL", strconv.FormatFloat(v, 'g', -1, 64)}
		case []byte:
			b = binding{"BINARY", hex.EncodeToString(v)}
		default:
			return nil, fmt.Errorf("argument %d: cannot bind %T; pass a string (CAST it in SQL) or a number", a.Ordinal, a.Value)
		}
		out[strconv.Itoa(a.Ordinal)] = b
	}
	return out, nil
}
