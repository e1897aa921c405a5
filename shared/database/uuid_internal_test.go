package database

import (
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// The binary plans are the ones pgx picks for uuid.UUID, alone and in arrays, and what they
// write reads back the same.
func TestUUIDBinaryPlans(t *testing.T) {
	m := pgtype.NewMap()
	registerUUID(m)
	id := uuid.MustParse("0b9f8a52-6c1e-4f1a-9d55-3a2f1c0e7b64")
	if p := m.PlanEncode(pgtype.UUIDOID, pgtype.BinaryFormatCode, id); p == nil {
		t.Fatal("no plan encodes a uuid.UUID")
	} else if _, ok := p.(encodeUUID); !ok {
		t.Fatalf("uuid.UUID encodes through %T, not the binary plan", p)
	}
	if p := m.PlanEncode(pgtype.UUIDOID, pgtype.BinaryFormatCode, &id); p == nil {
		t.Fatal("no plan encodes a *uuid.UUID")
	} else if _, ok := p.(encodeUUIDPointer); !ok {
		t.Fatalf("*uuid.UUID encodes through %T, not the binary plan", p)
	}
	if buf, err := m.Encode(pgtype.UUIDOID, pgtype.BinaryFormatCode, &id, nil); err != nil || string(buf) != string(id[:]) {
		t.Fatalf("encode *uuid.UUID: %x, %v", buf, err)
	}
	if buf, err := (encodeUUIDPointer{}).Encode((*uuid.UUID)(nil), nil); err != nil || buf != nil {
		t.Fatalf("encode a nil *uuid.UUID: %x, %v (want NULL)", buf, err)
	}
	got := id
	if p := m.PlanScan(pgtype.UUIDOID, pgtype.BinaryFormatCode, &got); p == nil {
		t.Fatal("no plan scans a *uuid.UUID")
	} else if _, ok := p.(scanUUID); !ok {
		t.Fatalf("*uuid.UUID scans through %T, not the binary plan", p)
	}
	ids := []uuid.UUID{id, uuid.MustParse("ffffffff-0000-4000-8000-000000000001")}
	buf, err := m.Encode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, ids, nil)
	if err != nil {
		t.Fatalf("encode []uuid.UUID: %v", err)
	}
	var back []uuid.UUID
	if err := m.Scan(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, buf, &back); err != nil {
		t.Fatalf("scan []uuid.UUID: %v", err)
	}
	if !slices.Equal(back, ids) {
		t.Fatalf("array read back %v, wrote %v", back, ids)
	}
	if p := m.PlanEncode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, ids); p == nil {
		t.Fatal("no plan encodes a []uuid.UUID")
	} else if _, ok := p.(encodeUUIDArray); !ok {
		t.Fatalf("[]uuid.UUID encodes through %T, not the binary array plan", p)
	}
	// Byte for byte what pgx's own array plan writes for the same ids as pgtype.UUIDs.
	for _, list := range [][]uuid.UUID{{}, ids[:1], ids} {
		theirs := make([]pgtype.UUID, len(list))
		for i, id := range list {
			theirs[i] = pgtype.UUID{Bytes: id, Valid: true}
		}
		want, err := m.Encode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, theirs, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Encode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, list, nil)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("%d ids: wrote %x, %v; pgx writes %x", len(list), got, err, want)
		}
	}
	if buf, err := m.Encode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, []uuid.UUID(nil), nil); err != nil || buf != nil {
		t.Fatalf("a nil []uuid.UUID: %x, %v (want NULL)", buf, err)
	}
	for _, src := range [][]byte{make([]byte, 15), {}} {
		if err := (scanUUID{}).Scan(src, &got); err == nil {
			t.Errorf("scanning %d bytes into a uuid.UUID succeeded", len(src))
		}
	}
	// NULL leaves the target as it was, as uuid.UUID's own Scan does.
	if err := (scanUUID{}).Scan(nil, &got); err != nil || got != id {
		t.Errorf("scanning NULL: %v, target now %v", err, got)
	}
}
