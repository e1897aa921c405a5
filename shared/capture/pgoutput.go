package capture

import (
	"encoding/binary"
	"fmt"
)

// The row messages (Insert, Update, Delete) are nearly all of a stream's bytes. They are decoded
// here in place, without pglogrepl's per-message and per-column allocations; the cells point
// into the message, which stays valid until the next receive.

// rowMessage is one decoded Insert, Update or Delete.
type rowMessage struct {
	kind     byte // 'I', 'U', 'D'
	relID    uint32
	old, new []cell // old: the before-image ('O', or 'K' key only); nil when absent
	hasOld   bool
	hasNew   bool
}

func decodeRow(m *rowMessage, data []byte) error {
	if len(data) < 6 {
		return fmt.Errorf("pgoutput %c message of %d bytes", data[0], len(data))
	}
	m.kind = data[0]
	m.relID = binary.BigEndian.Uint32(data[1:5])
	m.hasOld, m.hasNew = false, false
	rest := data[5:]
	var err error
	for len(rest) > 0 {
		tag := rest[0]
		switch tag {
		case 'K', 'O':
			m.old, rest, err = decodeTuple(m.old[:0], rest[1:])
			m.hasOld = true
		case 'N':
			m.new, rest, err = decodeTuple(m.new[:0], rest[1:])
			m.hasNew = true
		default:
			return fmt.Errorf("pgoutput %c message: unexpected tuple tag %q", m.kind, tag)
		}
		if err != nil {
			return fmt.Errorf("pgoutput %c message: %w", m.kind, err)
		}
	}
	return nil
}

func decodeTuple(dst []cell, src []byte) ([]cell, []byte, error) {
	if len(src) < 2 {
		return dst, nil, fmt.Errorf("truncated tuple")
	}
	n := int(binary.BigEndian.Uint16(src))
	src = src[2:]
	for i := 0; i < n; i++ {
		if len(src) < 1 {
			return dst, nil, fmt.Errorf("truncated tuple at column %d", i)
		}
		kind := src[0]
		src = src[1:]
		switch kind {
		case 'n', 'u':
			dst = append(dst, cell{kind: kind})
		case 't':
			if len(src) < 4 {
				return dst, nil, fmt.Errorf("truncated tuple at column %d", i)
			}
			l := int(binary.BigEndian.Uint32(src))
			if len(src) < 4+l {
				return dst, nil, fmt.Errorf("truncated value at column %d", i)
			}
			dst = append(dst, cell{kind: 't', data: src[4 : 4+l]})
			src = src[4+l:]
		default:
			return dst, nil, fmt.Errorf("column %d: unsupported tuple data kind %q (binary mode is off)", i, kind)
		}
	}
	return dst, src, nil
}
