// Package database opens the Postgres system of record and keeps its schema current.
package database

import (
	"context"
	"fmt"
	"os"
	"strconv"

	pgxdecimal "github.com/jackc/pgx-shopspring-decimal"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults of the project's own cluster, started by scripts/postgres.sh.
const (
	defaultPort     = "5433"
	defaultPassfile = "/var/lib/fin-orchestrator/pgpass-"
)

// URL returns the connection string to use: DATABASE_URL when set, otherwise the project's own
// local cluster. For the local cluster it points PGPASSFILE at the file the start script wrote,
// so no password ever sits in a URL, a log line or the repository.
//
// A DATABASE_URL without a password also finds the local cluster's password this way, so another
// database on the same cluster needs no password in its URL either.
func URL() string {
	port := os.Getenv("FIN_PG_PORT")
	if port == "" {
		port = defaultPort
	}
	if os.Getenv("PGPASSFILE") == "" {
		passfile := os.Getenv("FIN_PGPASSFILE")
		if passfile == "" {
			passfile = defaultPassfile + port
		}
		if _, err := os.Stat(passfile); err == nil {
			os.Setenv("PGPASSFILE", passfile)
		}
	}
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://fin@127.0.0.1:" + port + "/fin?sslmode=disable"
}

// Open connects a pool to url with exact decimals registered for NUMERIC columns.
// maxConns of zero keeps pgx's default.
func Open(ctx context.Context, url string, maxConns int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = int32(maxConns)
	}
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		pgxdecimal.Register(conn.TypeMap())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", Redact(url), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to %s: %w", Redact(url), err)
	}
	return pool, nil
}

// Redact returns url without its password, for logs and errors.
func Redact(url string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return "(unparseable database url)"
	}
	return "postgres://" + cfg.User + "@" + cfg.Host + ":" + strconv.Itoa(int(cfg.Port)) + "/" + cfg.Database
}
