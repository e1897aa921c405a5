package capture

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// Postgres type OIDs the capture converts specially; every other type (text, varchar, uuid,
// enums, ...) becomes a JSON string of its text form, as Debezium does.
const (
	oidBool        = 16
	oidBytea       = 17
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidOID         = 26
	oidJSON        = 114
	oidFloat4      = 700
	oidFloat8      = 701
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidNumeric     = 1700
	oidJSONB       = 3802
)

// valueEncoder appends the JSON form Debezium 3.6.1 gives a column (schemas disabled,
// decimal.handling.mode=string, time.precision.mode=adaptive_time_microseconds) from the
// column's Postgres text form, as pgoutput and text-format queries both deliver it.
type valueEncoder func(dst, text []byte) ([]byte, error)

func encoderFor(oid uint32, typmod int32) valueEncoder {
	switch oid {
	case oidBool:
		return func(dst, text []byte) ([]byte, error) {
			if len(text) == 1 && text[0] == 't' {
				return append(dst, "true"...), nil
			}
			return append(dst, "false"...), nil
		}
	case oidInt2, oidInt4, oidInt8, oidOID:
		return appendRaw
	case oidFloat4, oidFloat8:
		return appendFloat
	case oidNumeric:
		// Exact: the decimal string exactly as Postgres holds it ("1234.50"), never a float.
		return appendString
	case oidTimestamptz:
		width := 6 // Debezium pads to the column's precision, 6 when the column declares none
		if typmod >= 0 {
			width = int(typmod)
		}
		return func(dst, text []byte) ([]byte, error) { return appendTimestamptz(dst, text, width) }
	case oidTimestamp:
		return appendMicroTimestamp
	case oidDate:
		return appendDate
	case oidTime:
		return appendMicroTime
	case oidBytea:
		return appendBytea
	default:
		return appendString
	}
}

func appendRaw(dst, text []byte) ([]byte, error) { return append(dst, text...), nil }

func appendFloat(dst, text []byte) ([]byte, error) {
	if _, err := strconv.ParseFloat(string(text), 64); err != nil {
		return appendString(dst, text) // NaN, Infinity: not JSON numbers
	}
	return append(dst, text...), nil
}

func appendString(dst, text []byte) ([]byte, error) { return appendJSONString(dst, text), nil }

// appendJSONString quotes s the way Jackson (Kafka Connect's JsonConverter) does: only '"', '\\'
// and control characters are escaped, so the bytes match Debezium's.
func appendJSONString(dst []byte, s []byte) []byte {
	const hexDigits = "0123456789ABCDEF"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"':
			dst = append(dst, '\\', '"')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

var pgTimestampLayouts = []string{
	"2006-01-02 15:04:05.999999999-07",
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999-07:00:00",
}

// appendTimestamptz writes an ISO-8601 UTC string with exactly width fraction digits
// ("2024-06-30T21:59:59.999999Z"), Debezium's ZonedTimestamp form.
func appendTimestamptz(dst, text []byte, width int) ([]byte, error) {
	if out, ok := appendUTCTimestamp(dst, text, width); ok {
		return out, nil
	}
	s := string(text)
	if s == "infinity" || s == "-infinity" {
		return appendJSONString(dst, text), nil
	}
	var t time.Time
	var err error
	for _, layout := range pgTimestampLayouts {
		if t, err = time.Parse(layout, s); err == nil {
			break
		}
	}
	if err != nil {
		return dst, fmt.Errorf("timestamptz %q: %w", s, err)
	}
	t = t.UTC()
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, "2006-01-02T15:04:05")
	if width > 0 && width <= 9 {
		frac := strconv.Itoa(t.Nanosecond() + 1_000_000_000)[1:] // 9 digits
		dst = append(dst, '.')
		dst = append(dst, frac[:width]...)
	} else if ns := t.Nanosecond(); ns != 0 {
		frac := strings9(ns)
		dst = append(dst, '.')
		dst = append(dst, frac...)
	}
	return append(dst, 'Z', '"'), nil
}

// appendUTCTimestamp is the fast path for the form a UTC session always gives,
// "2006-01-02 15:04:05[.ffffff]+00": the digits only move. ok is false for anything else.
func appendUTCTimestamp(dst, text []byte, width int) ([]byte, bool) {
	n := len(text)
	if n < 22 || width <= 0 || width > 9 || text[4] != '-' || text[10] != ' ' || string(text[n-3:]) != "+00" {
		return dst, false
	}
	frac := text[19 : n-3]
	if len(frac) > 0 && (frac[0] != '.' || len(frac)-1 > width) {
		return dst, false
	}
	for i := 0; i < 19; i++ {
		if c := text[i]; (c < '0' || c > '9') && i != 4 && i != 7 && i != 10 && i != 13 && i != 16 {
			return dst, false
		}
	}
	dst = append(dst, '"')
	dst = append(dst, text[:10]...)
	dst = append(dst, 'T')
	dst = append(dst, text[11:19]...)
	dst = append(dst, '.')
	digits := 0
	if len(frac) > 0 {
		dst = append(dst, frac[1:]...)
		digits = len(frac) - 1
	}
	for ; digits < width; digits++ {
		dst = append(dst, '0')
	}
	return append(dst, 'Z', '"'), true
}

// strings9 is the fraction of ns without trailing zeros (ISO_OFFSET_DATE_TIME's form).
func strings9(ns int) string {
	f := strconv.Itoa(ns + 1_000_000_000)[1:]
	for len(f) > 1 && f[len(f)-1] == '0' {
		f = f[:len(f)-1]
	}
	return f
}

// appendMicroTimestamp writes a timestamp without time zone as microseconds since the epoch.
func appendMicroTimestamp(dst, text []byte) ([]byte, error) {
	t, err := time.Parse("2006-01-02 15:04:05.999999", string(text))
	if err != nil {
		return appendJSONString(dst, text), nil // infinity and BC dates keep their text
	}
	return strconv.AppendInt(dst, t.UnixMicro(), 10), nil
}

// appendDate writes a date as days since the epoch.
func appendDate(dst, text []byte) ([]byte, error) {
	t, err := time.Parse("2006-01-02", string(text))
	if err != nil {
		return appendJSONString(dst, text), nil
	}
	return strconv.AppendInt(dst, t.Unix()/86400, 10), nil
}

// appendMicroTime writes a time of day as microseconds since midnight.
func appendMicroTime(dst, text []byte) ([]byte, error) {
	t, err := time.Parse("15:04:05.999999", string(text))
	if err != nil {
		return dst, fmt.Errorf("time %q: %w", text, err)
	}
	d := time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute +
		time.Duration(t.Second())*time.Second + time.Duration(t.Nanosecond())
	return strconv.AppendInt(dst, d.Microseconds(), 10), nil
}

// appendBytea writes bytes as base64, as JsonConverter does for BYTES.
func appendBytea(dst, text []byte) ([]byte, error) {
	if len(text) < 2 || text[0] != '\\' || text[1] != 'x' {
		return dst, fmt.Errorf("bytea is not in hex output form (bytea_output must be 'hex')")
	}
	raw := make([]byte, hex.DecodedLen(len(text)-2))
	if _, err := hex.Decode(raw, text[2:]); err != nil {
		return dst, fmt.Errorf("bytea: %w", err)
	}
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, raw)
	return append(dst, '"'), nil
}
