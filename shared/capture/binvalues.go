package capture

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Chunk reads take the columns of these types in Postgres's binary format: their text output
// (timestamptz_out above all) was a fifth of Postgres's CPU for a keyset read of accounts, and the
// capture re-parsed most of it. Each encoder writes exactly what the text one writes for the same
// value (TestBinaryValuesMatchText reads every form both ways); any other type stays text.
const oidUUID = 2950

// binaryEncoderFor is the encoder of a column read in binary format, nil for a type read as text.
func binaryEncoderFor(oid uint32, typmod int32) valueEncoder {
	switch oid {
	case oidBool:
		return appendBinaryBool
	case oidInt2:
		return appendBinaryInt2
	case oidInt4:
		return appendBinaryInt4
	case oidInt8:
		return appendBinaryInt8
	case oidUUID:
		return appendBinaryUUID
	case oidNumeric:
		return appendBinaryNumeric
	case oidTimestamptz:
		width := 6 // as the text encoder: the column's precision, 6 when it declares none
		if typmod >= 0 {
			width = int(typmod)
		}
		var d dateCache // a chunk read's own (a table's columns are set for each read)
		return func(dst, b []byte) ([]byte, error) { return appendBinaryTimestamptz(dst, b, width, &d) }
	}
	return nil
}

func binaryLen(b []byte, n int, typ string) error {
	if len(b) != n {
		return fmt.Errorf("binary %s of %d bytes, want %d", typ, len(b), n)
	}
	return nil
}

func appendBinaryBool(dst, b []byte) ([]byte, error) {
	if err := binaryLen(b, 1, "bool"); err != nil {
		return dst, err
	}
	if b[0] != 0 {
		return append(dst, "true"...), nil
	}
	return append(dst, "false"...), nil
}

func appendBinaryInt2(dst, b []byte) ([]byte, error) {
	if err := binaryLen(b, 2, "int2"); err != nil {
		return dst, err
	}
	return strconv.AppendInt(dst, int64(int16(binary.BigEndian.Uint16(b))), 10), nil
}

func appendBinaryInt4(dst, b []byte) ([]byte, error) {
	if err := binaryLen(b, 4, "int4"); err != nil {
		return dst, err
	}
	return strconv.AppendInt(dst, int64(int32(binary.BigEndian.Uint32(b))), 10), nil
}

func appendBinaryInt8(dst, b []byte) ([]byte, error) {
	if err := binaryLen(b, 8, "int8"); err != nil {
		return dst, err
	}
	return strconv.AppendInt(dst, int64(binary.BigEndian.Uint64(b)), 10), nil
}

// appendBinaryUUID writes uuid_out's form, lower-case hex in 8-4-4-4-12 groups, as a JSON string.
// One pass into a fixed buffer: it runs for every key and foreign key of a snapshotted row.
func appendBinaryUUID(dst, b []byte) ([]byte, error) {
	if err := binaryLen(b, 16, "uuid"); err != nil {
		return dst, err
	}
	const digits = "0123456789abcdef"
	var out [38]byte
	out[0], out[37] = '"', '"'
	j := 1
	for i, v := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[j] = '-'
			j++
		}
		out[j], out[j+1] = digits[v>>4], digits[v&0x0f]
		j += 2
	}
	return append(dst, out[:]...), nil
}

// Numeric's sign word (src/backend/utils/adt/numeric.c).
const (
	numericPos  = 0x0000
	numericNeg  = 0x4000
	numericNaN  = 0xC000
	numericPInf = 0xD000
	numericNInf = 0xF000
)

// appendBinaryNumeric writes numeric_out's decimal string (as get_str_from_var does: base-10000
// digits, the integer part without leading zeros, exactly dscale fraction digits) as a JSON
// string: exact, never through a float.
func appendBinaryNumeric(dst, b []byte) ([]byte, error) {
	if len(b) < 8 {
		return dst, fmt.Errorf("binary numeric of %d bytes, want at least 8", len(b))
	}
	ndigits := int(binary.BigEndian.Uint16(b[0:]))
	weight := int(int16(binary.BigEndian.Uint16(b[2:])))
	sign := binary.BigEndian.Uint16(b[4:])
	dscale := int(binary.BigEndian.Uint16(b[6:]) & 0x3FFF)
	if len(b) != 8+2*ndigits {
		return dst, fmt.Errorf("binary numeric of %d bytes for %d digits", len(b), ndigits)
	}
	switch sign {
	case numericNaN:
		return append(dst, `"NaN"`...), nil
	case numericPInf:
		return append(dst, `"Infinity"`...), nil
	case numericNInf:
		return append(dst, `"-Infinity"`...), nil
	case numericPos, numericNeg:
	default:
		return dst, fmt.Errorf("binary numeric with sign word %#x", sign)
	}
	digit := func(d int) int {
		if d < 0 || d >= ndigits {
			return 0
		}
		return int(binary.BigEndian.Uint16(b[8+2*d:]))
	}
	dst = append(dst, '"')
	if sign == numericNeg {
		dst = append(dst, '-')
	}
	d := 0
	if weight < 0 {
		d = weight + 1
		dst = append(dst, '0')
	} else {
		for ; d <= weight; d++ {
			if d == 0 {
				dst = strconv.AppendInt(dst, int64(digit(d)), 10)
			} else {
				dst = append4(dst, digit(d))
			}
		}
	}
	if dscale > 0 {
		dst = append(dst, '.')
		end := len(dst) + dscale
		for i := 0; i < dscale; i, d = i+4, d+1 {
			dst = append4(dst, digit(d))
		}
		dst = dst[:end]
	}
	return append(dst, '"'), nil
}

// append4 writes n (0-9999) as four digits.
func append4(dst []byte, n int) []byte {
	return append(dst, byte('0'+n/1000), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10))
}

// postgresEpochMicros is 2000-01-01 00:00:00 UTC, Postgres's epoch, in Unix microseconds.
const postgresEpochMicros = 946_684_800_000_000

// microsPerDay is one day in microseconds.
const microsPerDay = 86_400_000_000

// dateCache is the date of the last timestamp an encoder wrote: a chunk's rows mostly share
// their days (rows written together sit together in key order), and the calendar (time.Time's
// Date) was most of a timestamp's cost, two a row of accounts.
type dateCache struct {
	day  int64    // days since Postgres's epoch
	date [11]byte // `"YYYY-MM-DD`; date[0] is 0 until a date is cached
}

// appendBinaryTimestamptz writes microseconds since 2000-01-01 UTC as the text encoder writes
// the same value (ISO-8601 UTC, width fraction digits). Infinities keep their names; a year the
// text encoder cannot read (before 1 AD or after 9999) fails the same way. d keeps the last date.
func appendBinaryTimestamptz(dst, b []byte, width int, d *dateCache) ([]byte, error) {
	if err := binaryLen(b, 8, "timestamptz"); err != nil {
		return dst, err
	}
	us := int64(binary.BigEndian.Uint64(b))
	switch us {
	case math.MaxInt64:
		return append(dst, `"infinity"`...), nil
	case math.MinInt64:
		return append(dst, `"-infinity"`...), nil
	}
	day, micros := us/microsPerDay, us%microsPerDay
	if micros < 0 { // before the epoch: the day before, counted from its midnight
		day, micros = day-1, micros+microsPerDay
	}
	if d.date[0] == 0 || d.day != day {
		year, month, mday := time.UnixMicro(day*microsPerDay + postgresEpochMicros).UTC().Date()
		if year < 1 || year > 9999 {
			return dst, fmt.Errorf("timestamptz in year %d: outside 1-9999", year)
		}
		d.date[0] = '"'
		d.date[1], d.date[2], d.date[3], d.date[4] = byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10)
		d.date[5], d.date[6], d.date[7] = '-', byte('0'+month/10), byte('0'+month%10)
		d.date[8], d.date[9], d.date[10] = '-', byte('0'+mday/10), byte('0'+mday%10)
		d.day = day
	}
	secs := micros / 1_000_000
	hour, minute, sec := secs/3600, secs/60%60, secs%60
	dst = append(dst, d.date[:]...)
	dst = append(dst, 'T', byte('0'+hour/10), byte('0'+hour%10), ':', byte('0'+minute/10), byte('0'+minute%10),
		':', byte('0'+sec/10), byte('0'+sec%10))
	if ns := int(micros%1_000_000) * 1000; width > 0 && width <= 9 {
		var frac [9]byte
		for i := 8; i >= 0; i, ns = i-1, ns/10 {
			frac[i] = byte('0' + ns%10)
		}
		dst = append(dst, '.')
		dst = append(dst, frac[:width]...)
	} else if ns != 0 {
		dst = append(dst, '.')
		dst = append(dst, strings9(ns)...)
	}
	return append(dst, 'Z', '"'), nil
}
