// Package pgtest gives each test its own freshly migrated Postgres database on the project's
// cluster (scripts/postgres.sh, or DATABASE_URL), so tests in parallel packages never share rows.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fin-orchestrator/fin-orchestrator/shared/database"
	"github.com/fin-orchestrator/fin-orchestrator/shared/localpg"
)

// DB is one throwaway database.
type DB struct {
	Name string
	URL  string
	Pool *pgxpool.Pool
}

// New creates a database migrated to the current schema and drops it when the test ends.
func New(t testing.TB) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := localpg.URL()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("Postgres is not reachable at %s (start it with scripts/postgres.sh or set DATABASE_URL): %v", database.Redact(base), err)
	}
	defer admin.Close(ctx)

	tpl, err := template(ctx, admin, base)
	if err != nil {
		t.Fatalf("prepare template database: %v", err)
	}
	name := "fin_test_" + randomHex(6)
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, tpl)); err != nil {
		t.Fatalf("create test database %s: %v", name, err)
	}
	url := withDatabase(t, base, name)
	pool, err := database.Open(ctx, url, 0)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() {
		pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			t.Logf("drop %s: %v", name, err)
		}
	})
	return &DB{Name: name, URL: url, Pool: pool}
}

// template returns a database migrated to the embedded schema, made once per schema version.
func template(ctx context.Context, admin *pgx.Conn, base string) (string, error) {
	migrations, err := database.Migrations()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, m := range migrations {
		h.Write([]byte(m.Name))
		h.Write([]byte(m.SQL))
	}
	name := "fin_tpl_" + hex.EncodeToString(h.Sum(nil))[:12]

	// Serialise template creation across test binaries running at once.
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(7202611251)"); err != nil {
		return "", err
	}
	defer admin.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(7202611251)")
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	building := name + "_build"
	admin.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", building))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+building); err != nil {
		return "", err
	}
	u, err := replaceDatabase(base, building)
	if err != nil {
		return "", err
	}
	pool, err := database.Open(ctx, u, 1)
	if err != nil {
		return "", err
	}
	_, err = database.Migrate(ctx, pool)
	pool.Close()
	if err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s RENAME TO %s", building, name)); err != nil {
		return "", err
	}
	return name, nil
}

func withDatabase(t testing.TB, base, name string) string {
	t.Helper()
	u, err := replaceDatabase(base, name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// replaceDatabase keeps every setting of base (user, password, sslmode) but the database name.
func replaceDatabase(base, name string) (string, error) {
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		u, err := url.Parse(base)
		if err != nil {
			return "", fmt.Errorf("parse database url: %w", err)
		}
		u.Path = "/" + name
		return u.String(), nil
	}
	// Keyword/value form: a later keyword wins.
	return base + " dbname=" + name, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ConfirmSlot moves the logical slot's confirmed position to at least the WAL insert position of
// now, as a capture confirming everything written so far would. Postgres advances a slot only up
// to the flushed WAL, which other databases' in-flight writes can leave behind the insert position
// for a moment, so it retries until the slot is there.
func ConfirmSlot(ctx context.Context, t testing.TB, pool *pgxpool.Pool, slot string) {
	t.Helper()
	var target string
	if err := pool.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&target); err != nil {
		t.Fatalf("read the WAL position: %v", err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		var done bool
		err := pool.QueryRow(ctx, `SELECT end_lsn >= $2::pg_lsn FROM pg_replication_slot_advance($1, $2::pg_lsn)`, slot, target).Scan(&done)
		if err != nil {
			t.Fatalf("advance slot %s to %s: %v", slot, target, err)
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot %s did not reach %s in 30 s", slot, target)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SlotPatience bounds how long CreateSlot waits for the cluster's other transactions.
const SlotPatience = 5 * time.Minute

// CreateSlot creates the logical replication slot slot (pgoutput) in db and drops it when the
// test ends. A logical slot is made only once every transaction that held a transaction id on the
// cluster when its creation began has ended, in any database: another package's test or a
// benchmark's capture reading a large table holds it for as long as that takes, which is not the
// test's time. So the creation has SlotPatience of its own, whatever the test's deadline; after a
// few seconds it logs which backends it waits for, and it fails naming them.
func CreateSlot(t testing.TB, db *DB, slot string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), SlotPatience)
	defer cancel()
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatalf("create slot %s: %v", slot, err)
	}
	defer conn.Release()
	done := make(chan struct{})
	waiting := make(chan string, 1)
	go func() {
		defer close(waiting)
		began, last, logged := time.Now(), "", ""
		for {
			select {
			case <-done:
				waiting <- last
				return
			case <-time.After(time.Second):
			}
			if w, err := Waits(ctx, db.Pool, db.Name); err == nil && w != "" {
				last = w
				if w != logged && time.Since(began) >= 5*time.Second {
					logged = w
					t.Logf("creating slot %s waits for transactions elsewhere on the cluster: %s", slot, w)
				}
			}
		}
	}()
	_, err = conn.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, slot)
	close(done)
	last := <-waiting
	if err != nil {
		t.Fatalf("create slot %s (waited for: %s): %v", slot, last, err)
	}
	t.Cleanup(func() { db.Pool.Exec(context.Background(), `SELECT pg_drop_replication_slot($1)`, slot) })
}
