package landing

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// This file decodes the Debezium envelope in one validating pass over the bytes, without
// reflection: encoding/json spent two thirds of the landing's time validating and then decoding
// the same bytes. Everything is checked as strictly as encoding/json checks it (the tests compare
// the two on valid and broken input); row images come out as the exact bytes Debezium wrote.

// envelopeFields is what bronze keeps of an envelope; images are sub-slices of the input.
type envelopeFields struct {
	before, after []byte
	op            string
	tsMs          optInt
	hasSource     bool
	schema, table string
	snapshot      string
	txID, lsn     optInt
	srcTsMs       optInt
	srcTsUs       optInt
}

// optInt is an integer field that may be null or absent (ok false).
type optInt struct {
	v  int64
	ok bool
}

type scanner struct {
	b   []byte
	pos int
}

type syntaxError struct {
	msg string
	pos int
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at byte %d", e.msg, e.pos) }

func (s *scanner) fail(format string, args ...any) error {
	return &syntaxError{msg: fmt.Sprintf(format, args...), pos: s.pos}
}

// scanEnvelope reads a whole envelope; trailing bytes other than white space are an error.
func scanEnvelope(b []byte) (envelopeFields, error) {
	var f envelopeFields
	if !utf8.Valid(b) {
		return f, &syntaxError{msg: "invalid UTF-8", pos: 0}
	}
	s := scanner{b: b}
	s.space()
	if s.literal("null") { // as encoding/json: nothing decoded, no error
		s.space()
		if s.pos != len(s.b) {
			return f, s.fail("unexpected %q after null", s.b[s.pos])
		}
		return f, nil
	}
	err := s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "before":
			f.before, err = s.value()
		case "after":
			f.after, err = s.value()
		case "op":
			f.op, err = s.stringOrNull("op")
		case "ts_ms":
			f.tsMs, err = s.intOrNull("ts_ms")
		case "source":
			err = s.source(&f)
		default:
			_, err = s.value()
		}
		return err
	})
	if err != nil {
		return f, err
	}
	s.space()
	if s.pos != len(s.b) {
		return f, s.fail("unexpected %q after the envelope", s.b[s.pos])
	}
	return f, nil
}

func (s *scanner) source(f *envelopeFields) error {
	s.space()
	if s.literal("null") {
		return nil
	}
	f.hasSource = true
	return s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "schema":
			f.schema, err = s.stringOrNull("source.schema")
		case "table":
			f.table, err = s.stringOrNull("source.table")
		case "snapshot":
			var raw []byte
			if raw, err = s.value(); err == nil {
				f.snapshot, err = snapshotString(raw)
			}
		case "txId":
			f.txID, err = s.intOrNull("source.txId")
		case "lsn":
			f.lsn, err = s.intOrNull("source.lsn")
		case "ts_ms":
			f.srcTsMs, err = s.intOrNull("source.ts_ms")
		case "ts_us":
			f.srcTsUs, err = s.intOrNull("source.ts_us")
		default:
			_, err = s.value()
		}
		return err
	})
}

// isSpace and plainInString are lookup tables: the scanner's inner loops, a table load per byte.
var isSpace, plainInString [256]bool

func init() {
	for _, c := range " \t\n\r" {
		isSpace[c] = true
	}
	for c := 0x20; c < 256; c++ {
		plainInString[c] = c != '"' && c != '\\'
	}
}

func (s *scanner) space() {
	for s.pos < len(s.b) && isSpace[s.b[s.pos]] {
		s.pos++
	}
}

func (s *scanner) literal(word string) bool {
	if len(s.b)-s.pos >= len(word) && string(s.b[s.pos:s.pos+len(word)]) == word {
		s.pos += len(word)
		return true
	}
	return false
}

// object reads {"key": value, ...}, calling field with the scanner on each value; field must
// consume the value. Keys with escapes are unescaped.
func (s *scanner) object(field func(key []byte) error) error {
	s.space()
	if s.pos >= len(s.b) || s.b[s.pos] != '{' {
		return s.fail("want an object")
	}
	s.pos++
	s.space()
	if s.pos < len(s.b) && s.b[s.pos] == '}' {
		s.pos++
		return nil
	}
	for {
		s.space()
		raw, err := s.str()
		if err != nil {
			return err
		}
		key := raw[1 : len(raw)-1]
		if hasEscape(key) {
			var k string
			if err := json.Unmarshal(raw, &k); err != nil {
				return s.fail("bad object key: %v", err)
			}
			key = []byte(k)
		}
		s.space()
		if s.pos >= len(s.b) || s.b[s.pos] != ':' {
			return s.fail("want ':' after an object key")
		}
		s.pos++
		s.space()
		if err := field(key); err != nil {
			return err
		}
		s.space()
		if s.pos >= len(s.b) {
			return s.fail("unterminated object")
		}
		switch s.b[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return s.fail("want ',' or '}' in an object")
		}
	}
}

func hasEscape(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

// value validates any JSON value and returns its bytes.
func (s *scanner) value() ([]byte, error) {
	s.space()
	start := s.pos
	if s.pos >= len(s.b) {
		return nil, s.fail("unexpected end of input")
	}
	switch c := s.b[s.pos]; {
	case c == '{':
		if err := s.object(func([]byte) error { _, err := s.value(); return err }); err != nil {
			return nil, err
		}
	case c == '[':
		if err := s.array(); err != nil {
			return nil, err
		}
	case c == '"':
		if _, err := s.str(); err != nil {
			return nil, err
		}
	case c == '-' || (c >= '0' && c <= '9'):
		if err := s.number(); err != nil {
			return nil, err
		}
	case s.literal("null"), s.literal("true"), s.literal("false"):
	default:
		return nil, s.fail("invalid character %q looking for a value", c)
	}
	return s.b[start:s.pos], nil
}

func (s *scanner) array() error {
	s.pos++ // [
	s.space()
	if s.pos < len(s.b) && s.b[s.pos] == ']' {
		s.pos++
		return nil
	}
	for {
		if _, err := s.value(); err != nil {
			return err
		}
		s.space()
		if s.pos >= len(s.b) {
			return s.fail("unterminated array")
		}
		switch s.b[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			return s.fail("want ',' or ']' in an array")
		}
	}
}

// str validates a string and returns it with its quotes.
func (s *scanner) str() ([]byte, error) {
	if s.pos >= len(s.b) || s.b[s.pos] != '"' {
		return nil, s.fail("want a string")
	}
	start := s.pos
	s.pos++
	for s.pos < len(s.b) {
		if plainInString[s.b[s.pos]] {
			s.pos++
			continue
		}
		c := s.b[s.pos]
		switch {
		case c == '"':
			s.pos++
			return s.b[start:s.pos], nil
		case c == '\\':
			if s.pos+1 >= len(s.b) {
				return nil, s.fail("unterminated escape")
			}
			switch s.b[s.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos += 2
			case 'u':
				if s.pos+6 > len(s.b) || !isHex4(s.b[s.pos+2:s.pos+6]) {
					return nil, s.fail("bad \\u escape")
				}
				s.pos += 6
			default:
				return nil, s.fail("bad escape \\%c", s.b[s.pos+1])
			}
		default: // below 0x20
			return nil, s.fail("control character in a string")
		}
	}
	return nil, s.fail("unterminated string")
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// number validates a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	if s.b[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(s.b) && s.b[s.pos] == '0':
		s.pos++
	case s.digits() == 0:
		return s.fail("bad number")
	}
	if s.pos < len(s.b) && s.b[s.pos] == '.' {
		s.pos++
		if s.digits() == 0 {
			return s.fail("bad number: no digits after '.'")
		}
	}
	if s.pos < len(s.b) && (s.b[s.pos] == 'e' || s.b[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.b) && (s.b[s.pos] == '+' || s.b[s.pos] == '-') {
			s.pos++
		}
		if s.digits() == 0 {
			return s.fail("bad number: no digits in the exponent")
		}
	}
	return nil
}

func (s *scanner) digits() int {
	n := 0
	for s.pos < len(s.b) && s.b[s.pos] >= '0' && s.b[s.pos] <= '9' {
		s.pos++
		n++
	}
	return n
}

// stringOrNull reads a string field ("" for null).
func (s *scanner) stringOrNull(name string) (string, error) {
	raw, err := s.value()
	if err != nil {
		return "", err
	}
	switch {
	case string(raw) == "null":
		return "", nil
	case raw[0] != '"':
		return "", poison("%s is %s, want a string", name, raw)
	case hasEscape(raw):
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return "", poison("%s: %v", name, err)
		}
		return v, nil
	}
	return intern(raw[1 : len(raw)-1]), nil
}

// intern returns the common values of the envelope's string fields without allocating.
func intern(b []byte) string {
	switch string(b) { // no allocation: the compiler compares in place
	case "c":
		return "c"
	case "u":
		return "u"
	case "d":
		return "d"
	case "r":
		return "r"
	case "public":
		return "public"
	case "true":
		return "true"
	case "false":
		return "false"
	case "last":
		return "last"
	case "first":
		return "first"
	}
	return string(b)
}

// intOrNull reads an integer field (not ok for null); a fraction or an overflow is an error, as
// encoding/json into an int64 would say.
func (s *scanner) intOrNull(name string) (optInt, error) {
	raw, err := s.value()
	if err != nil || string(raw) == "null" {
		return optInt{}, err
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return optInt{}, poison("%s is %s, want an integer", name, raw)
	}
	return optInt{n, true}, nil
}

// validJSON reports whether b is one JSON value, as json.Valid does.
func validJSON(b []byte) bool {
	s := scanner{b: b}
	if _, err := s.value(); err != nil {
		return false
	}
	s.space()
	return s.pos == len(b) && utf8.Valid(b)
}
