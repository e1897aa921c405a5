package database

import (
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
	m.RegisterType(&pgtype.Type{Name: "_uuid", OID: pgtype.UUIDArrayOID, Codec: &pgtype.ArrayCodec{ElementType: t}})
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
