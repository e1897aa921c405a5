// Package schedule reads EventBridge schedule expressions, rate(...) and cron(...), and tells when
// they fire next, so the local runtime runs scheduled functions as EventBridge would.
package schedule

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule tells the next firing time strictly after a given time.
type Schedule interface {
	Next(after time.Time) time.Time
}

// Parse reads "rate(5 minutes)" or "cron(0/15 * * * ? *)". Times are UTC, as in EventBridge.
func Parse(expr string) (Schedule, error) {
	expr = strings.TrimSpace(expr)
	switch {
	case strings.HasPrefix(expr, "rate(") && strings.HasSuffix(expr, ")"):
		return parseRate(expr[5 : len(expr)-1])
	case strings.HasPrefix(expr, "cron(") && strings.HasSuffix(expr, ")"):
		return parseCron(expr[5 : len(expr)-1])
	}
	return nil, fmt.Errorf("schedule %q: want rate(value unit) or cron(fields)", expr)
}

type rate time.Duration

func (r rate) Next(after time.Time) time.Time { return after.Add(time.Duration(r)) }

func parseRate(s string) (Schedule, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return nil, fmt.Errorf("rate(%s): want a value and a unit", s)
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 0 {
		return nil, fmt.Errorf("rate(%s): value must be a positive whole number", s)
	}
	unit := map[string]time.Duration{"minute": time.Minute, "minutes": time.Minute, "hour": time.Hour,
		"hours": time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour}[f[1]]
	if unit == 0 {
		return nil, fmt.Errorf("rate(%s): unit must be minute(s), hour(s) or day(s)", s)
	}
	if (n == 1) != !strings.HasSuffix(f[1], "s") {
		return nil, fmt.Errorf("rate(%s): EventBridge wants the singular unit for 1 and the plural otherwise", s)
	}
	return rate(time.Duration(n) * unit), nil
}

// cron holds the allowed values of each field; dom or dow may be "any" (?).
type cron struct {
	minute, hour, dom, month, dow, year map[int]bool
}

var (
	monthNames = map[string]int{"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12}
	dayNames   = map[string]int{"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
)

func parseCron(s string) (Schedule, error) {
	f := strings.Fields(s)
	if len(f) != 6 {
		return nil, fmt.Errorf("cron(%s): want 6 fields (minutes hours day-of-month month day-of-week year)", s)
	}
	if (f[2] == "?") == (f[4] == "?") {
		return nil, fmt.Errorf("cron(%s): exactly one of day-of-month and day-of-week must be ?", s)
	}
	var c cron
	var err error
	specs := []struct {
		dst      *map[int]bool
		field    string
		lo, hi   int
		names    map[string]int
		fieldFor string
	}{
		{&c.minute, f[0], 0, 59, nil, "minutes"},
		{&c.hour, f[1], 0, 23, nil, "hours"},
		{&c.dom, f[2], 1, 31, nil, "day-of-month"},
		{&c.month, f[3], 1, 12, monthNames, "month"},
		{&c.dow, f[4], 1, 7, dayNames, "day-of-week"},
		{&c.year, f[5], 1970, 2199, nil, "year"},
	}
	for _, sp := range specs {
		if *sp.dst, err = field(sp.field, sp.lo, sp.hi, sp.names); err != nil {
			return nil, fmt.Errorf("cron(%s): %s: %w", s, sp.fieldFor, err)
		}
	}
	return c, nil
}

// field expands one cron field to the set of values it allows; nil means any (? or *).
func field(s string, lo, hi int, names map[string]int) (map[int]bool, error) {
	if s == "?" || s == "*" {
		return nil, nil
	}
	out := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		step := 1
		if base, st, ok := strings.Cut(part, "/"); ok {
			n, err := strconv.Atoi(st)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("bad step in %q", part)
			}
			part, step = base, n
		}
		from, to := lo, hi
		switch {
		case part == "*":
		case strings.Contains(part, "-"):
			a, b, _ := strings.Cut(part, "-")
			var err error
			if from, err = value(a, names); err != nil {
				return nil, err
			}
			if to, err = value(b, names); err != nil {
				return nil, err
			}
		default:
			v, err := value(part, names)
			if err != nil {
				return nil, err
			}
			from = v
			if step == 1 {
				to = v
			}
		}
		if from < lo || to > hi || from > to {
			return nil, fmt.Errorf("%q is outside %d-%d", part, lo, hi)
		}
		for v := from; v <= to; v += step {
			out[v] = true
		}
	}
	return out, nil
}

func value(s string, names map[string]int) (int, error) {
	if v, ok := names[strings.ToUpper(s)]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number (L, W and # are not supported locally)", s)
	}
	return v, nil
}

func allows(set map[int]bool, v int) bool { return set == nil || set[v] }

// Next walks minute by minute; skipping whole hours and days keeps it fast for sparse schedules.
func (c cron) Next(after time.Time) time.Time {
	t := after.UTC().Truncate(time.Minute).Add(time.Minute)
	limit := t.AddDate(5, 0, 0)
	for t.Before(limit) {
		switch {
		case !allows(c.year, t.Year()) || !allows(c.month, int(t.Month())):
			t = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 1, 0)
		case !allows(c.dom, t.Day()) || !allows(c.dow, int(t.Weekday())+1):
			t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1)
		case !allows(c.hour, t.Hour()):
			t = t.Truncate(time.Hour).Add(time.Hour)
		case !allows(c.minute, t.Minute()):
			t = t.Add(time.Minute)
		default:
			return t
		}
	}
	return time.Time{} // never fires within five years
}
