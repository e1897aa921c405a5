// Package database opens the Postgres system of record and keeps its schema current.
package database

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	pgxdecimal "github.com/jackc/pgx-shopspring-decimal"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
)

// Open connects a pool to url with exact decimals registered for NUMERIC columns and
// github.com/google/uuid ids sent and read in binary (registerUUID).
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
		registerUUID(conn.TypeMap())
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

// SecretReader returns a secret's string; awssecrets.Client is one.
type SecretReader interface {
	String(ctx context.Context, id string) (string, error)
}

// URLFrom returns the Postgres URL a function's settings give: DATABASE_URL when set; otherwise,
// when DATABASE_SECRET_ARN is set, the "url" key of that secret (a secret that is a bare URL works
// too); otherwise "".
func URLFrom(ctx context.Context, env *settings.Env, secrets SecretReader) (string, error) {
	if u := env.Get("DATABASE_URL"); u != "" {
		return u, nil
	}
	arn := env.Get("DATABASE_SECRET_ARN")
	if arn == "" {
		return "", nil
	}
	s, err := secrets.String(ctx, arn)
	if err != nil {
		return "", fmt.Errorf("database url: %w", err)
	}
	var v struct {
		URL string `json:"url"`
	}
	if json.Unmarshal([]byte(s), &v) == nil && v.URL != "" {
		return v.URL, nil
	}
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		return s, nil
	}
	return "", fmt.Errorf("secret %s holds neither a JSON object with a \"url\" key nor a postgres:// URL", arn)
}
