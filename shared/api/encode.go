package api

import (
	"encoding/json"
	"io"
	"time"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
)

// jsonAppender is a body that writes its own JSON, byte for byte what encoding/json (of the
// project's toolchain, Go 1.27) writes for it, without reflection. Only the hottest bodies implement it (an account: every
// GET /accounts/{id}); encoding/json writes everything else.
type jsonAppender interface {
	appendJSON(b []byte) []byte
}

// jsonFormat is Huma's default JSON format (encoding/json, HTML left unescaped, a trailing
// newline) with the jsonAppender shortcut.
var jsonFormat = huma.Format{
	Marshal: func(w io.Writer, v any) error {
		if a, ok := v.(jsonAppender); ok {
			_, err := w.Write(append(a.appendJSON(make([]byte, 0, 512)), '\n'))
			return err
		}
		return huma.DefaultJSONFormat.Marshal(w, v)
	},
	Unmarshal: json.Unmarshal,
}

func (a Account) appendJSON(b []byte) []byte {
	b = appendField(b, '{', "account_id", a.AccountID)
	b = appendField(b, ',', "customer_id", a.CustomerID)
	b = appendField(b, ',', "account_type", a.AccountType)
	b = appendField(b, ',', "currency", a.Currency)
	if a.Nickname == nil {
		b = append(b, `,"nickname":null`...)
	} else {
		b = appendField(b, ',', "nickname", *a.Nickname)
	}
	b = appendField(b, ',', "balance", a.Balance)
	b = appendField(b, ',', "status", a.Status)
	b = appendTime(b, "created_at", a.CreatedAt)
	b = appendTime(b, "updated_at", a.UpdatedAt)
	return append(b, '}')
}

// appendField appends sep, the key and the string value. Keys are plain ASCII.
func appendField(b []byte, sep byte, key, value string) []byte {
	b = append(b, sep, '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendString(b, value)
}

// appendTime appends a time field as time.Time.MarshalJSON does (RFC 3339 with nanoseconds).
func appendTime(b []byte, key string, t time.Time) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, `":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendString quotes s as encoding/json does with HTML escaping off: quote, backslash and
// control characters escaped, invalid UTF-8 replaced by U+FFFD, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\ufffd"...) // the replacement character itself, as encoding/json since Go 1.27
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
