package database_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/fin-orchestrator/fin-orchestrator/shared/pgtest"
)

// Ids go to Postgres and come back unchanged through a pool from Open, in the extended
// protocol's binary format (the default) and the simple protocol's text, NULLs included. (The
// simple protocol cannot send a []uuid.UUID, with or without registerUUID: pgx's limit.)
func TestUUIDRoundTrip(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	id := uuid.MustParse("0b9f8a52-6c1e-4f1a-9d55-3a2f1c0e7b64")
	other := uuid.MustParse("ffffffff-0000-4000-8000-000000000001")
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) {
			var (
				one        uuid.UUID
				text       string
				null, some *uuid.UUID
				list       []uuid.UUID
				second     string
			)
			var ids any = []uuid.UUID{id, other}
			if mode == pgx.QueryExecModeSimpleProtocol {
				ids = "{" + id.String() + "," + other.String() + "}"
			}
			err := db.Pool.QueryRow(ctx, `SELECT $1::uuid, $1::uuid::text, NULL::uuid, $2::uuid,
				$3::uuid[], ($3::uuid[])[2]::text`, mode, id, &other, ids).
				Scan(&one, &text, &null, &some, &list, &second)
			if err != nil {
				t.Fatal(err)
			}
			if one != id || text != id.String() || null != nil || some == nil || *some != other ||
				len(list) != 2 || list[0] != id || list[1] != other || second != other.String() {
				t.Fatalf("read back %v %s %v %v %v %s", one, text, null, some, list, second)
			}
			var missing *uuid.UUID
			var isNull bool
			if err := db.Pool.QueryRow(ctx, `SELECT $1::uuid IS NULL`, mode, missing).Scan(&isNull); err != nil || !isNull {
				t.Fatalf("a nil *uuid.UUID: NULL %v, %v", isNull, err)
			}
			// NULL into a uuid.UUID leaves it as it was, as uuid.UUID's own Scan does.
			if err := db.Pool.QueryRow(ctx, `SELECT NULL::uuid`, mode).Scan(&one); err != nil || one != id {
				t.Fatalf("NULL into a uuid.UUID: %v, now %v", err, one)
			}
		})
	}
}
