package database

import (
	"encoding/binary"
	"errors"
	"strconv"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// registerUUID teaches a connection's type map github.com/google/uuid's UUID in the binary
// format both ways. pgx knows that type only as a driver.Valuer and a sql.Scanner: every id sent
// went through its 36-character string, every id array through a binary plan that failed (its
// error built with fmt.Errorf, then dropped) before the string one, and every id read was
// parsed back from a string; about 5% of a transfer's CPU in the API. Other values (pgtype.UUID,
// strings, the text format) keep pgx's own plans.
func registerUUID(m *pgtype.Map) {
	t := &pgtype.Type{Name: "uuid", OID: pgtype.UUIDOID, Codec: uuidCodec{}}
	m.RegisterType(t)
	// The array type names its element type: the old one would keep the old plans.
	m.RegisterType(&pgtype.Type{Name: "_uuid", OID: pgtype.UUIDArrayOID, Codec: uuidArrayCodec{&pgtype.ArrayCodec{ElementType: t}}})
}

// uuidArrayCodec writes a []uuid.UUID as a binary uuid[] itself: pgx's array plan for a slice of
// a type it does not know walks it by reflection, boxing each element (every batched GET
// /accounts/{id} and every posting's lock sends one). Everything else is pgx's ArrayCodec.
type uuidArrayCodec struct{ *pgtype.ArrayCodec }

func (c uuidArrayCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.([]uuid.UUID); ok && format == pgtype.BinaryFormatCode {
		return encodeUUIDArray{}
	}
	return c.ArrayCodec.PlanEncode(m, oid, format, value)
}

type encodeUUIDArray struct{}

// Encode writes the array in Postgres's binary form: one dimension, no NULLs, the element type,
// the length and lower bound 1, then each element's length (16) and bytes, as pgx's own plan
// writes it (an empty slice too: one dimension of length 0). A nil slice is NULL.
func (encodeUUIDArray) Encode(value any, buf []byte) ([]byte, error) {
	ids := value.([]uuid.UUID)
	if ids == nil {
		return nil, nil
	}
	for _, v := range []uint32{1, 0, pgtype.UUIDOID, uint32(len(ids)), 1} {
		buf = binary.BigEndian.AppendUint32(buf, v)
	}
	for _, id := range ids {
		buf = binary.BigEndian.AppendUint32(buf, 16)
		buf = append(buf, id[:]...)
	}
	return buf, nil
}

type uuidCodec struct{ pgtype.UUIDCodec }

func (c uuidCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if format == pgtype.BinaryFormatCode {
		switch value.(type) {
		case uuid.UUID:
			return encodeUUID{}
		case *uuid.UUID:
			// A nullable id (a transfer's related_account_id): a *uuid.UUID is a driver.Valuer too,
			// so pgx never dereferences it and would send its string, after a binary attempt
			// that failed and built its error with fmt.Errorf.
			return encodeUUIDPointer{}
		}
	}
	return c.UUIDCodec.PlanEncode(m, oid, format, value)
}

func (c uuidCodec) PlanScan(m *pgtype.Map, oid uint32, format int16, target any) pgtype.ScanPlan {
	if _, ok := target.(*uuid.UUID); ok && format == pgtype.BinaryFormatCode {
		return scanUUID{}
	}
	return c.UUIDCodec.PlanScan(m, oid, format, target)
}

type encodeUUID struct{}

func (encodeUUID) Encode(value any, buf []byte) ([]byte, error) {
	id := value.(uuid.UUID)
	return append(buf, id[:]...), nil
}

type encodeUUIDPointer struct{}

// Encode writes a nil pointer as NULL (pgx already sends a nil *uuid.UUID as NULL before it
// asks for a plan; this keeps the plan right on its own).
func (encodeUUIDPointer) Encode(value any, buf []byte) ([]byte, error) {
	id := value.(*uuid.UUID)
	if id == nil {
		return nil, nil
	}
	return append(buf, id[:]...), nil
}

type scanUUID struct{}

// Scan reads NULL as the sql.Scanner it replaces did (uuid.UUID.Scan): dst is left as it was.
// A nullable column scans into a *uuid.UUID target, which pgx sets to nil instead.
func (scanUUID) Scan(src []byte, dst any) error {
	switch {
	case src == nil:
		return nil
	case len(src) != 16:
		return errors.New("invalid length for uuid: " + strconv.Itoa(len(src)))
	}
	copy(dst.(*uuid.UUID)[:], src)
	return nil
}
