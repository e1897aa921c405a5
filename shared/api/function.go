package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
)

// Function is the api function, built once by NewFunction for its Lambda (functions/api), the
// local stack (`fin up`) and `fin api`, so the three cannot drift.
type Function struct {
	App  *fiber.App
	Auth AuthConfig
	pool *pgxpool.Pool
}

// Deps are the parts the deployment supplies: where they differ (Postgres through a secret in
// AWS, a migrated local pool; history from Snowflake or DuckDB), the caller builds them.
type Deps struct {
	Pool    *pgxpool.Pool
	History History // nil: the history endpoints answer 503
	// DevSecretPath, locally, holds the HS256 secret `fin token` signs with, used when neither
	// FIN_JWKS_URL nor FIN_JWT_SECRET is set; empty in Lambda.
	DevSecretPath string
	// Metrics receives the API's EMF lines (os.Stdout in Lambda, a local file in the stack).
	Metrics io.Writer
}

// NewFunction builds the API from the settings env declares for it (settings.API) and deps.
// ctx bounds background work (the JWKS refresh).
func NewFunction(ctx context.Context, env *settings.Env, deps Deps) (*Function, error) {
	auth, err := AuthConfigFromEnv(env.Get, deps.DevSecretPath)
	if err != nil {
		return nil, err
	}
	pipeline, err := env.Int("FIN_API_ACCOUNT_PIPELINE")
	if err := errors.Join(err, env.Err()); err != nil {
		return nil, fmt.Errorf("api settings: %w", err)
	}
	app, err := New(ctx, Config{Pool: deps.Pool, Auth: auth, History: deps.History, AccountReadsPipeline: pipeline, Metrics: deps.Metrics})
	if err != nil {
		return nil, err
	}
	return &Function{App: app, Auth: auth, pool: deps.Pool}, nil
}

// Housekeeping is the event template.yaml's schedule sends the api function (its Input):
// {"housekeeping": "purge-idempotency-keys"}. No API Gateway event has that field.
type Housekeeping struct {
	Task string `json:"housekeeping"`
}

// TaskPurgeIdempotencyKeys deletes expired idempotency keys.
const TaskPurgeIdempotencyKeys = "purge-idempotency-keys"

// HousekeepingResult is what a housekeeping invocation answers.
type HousekeepingResult struct {
	Task   string `json:"housekeeping"`
	Purged int64  `json:"purged"`
}

// Handler is the function's Lambda handler: API Gateway requests (payload 1.0 and 2.0) and the
// housekeeping schedule's events.
func (f *Function) Handler() func(context.Context, json.RawMessage) (any, error) {
	serve := LambdaHandler(f.App)
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		var hk Housekeeping
		if json.Unmarshal(raw, &hk) == nil && hk.Task != "" {
			return f.Housekeep(ctx, hk.Task)
		}
		return serve(ctx, raw)
	}
}

// Housekeep runs one housekeeping task; an unknown task is an error naming it.
func (f *Function) Housekeep(ctx context.Context, task string) (HousekeepingResult, error) {
	switch task {
	case TaskPurgeIdempotencyKeys:
		n, err := purgeIdempotencyKeys(ctx, f.pool)
		if err != nil {
			return HousekeepingResult{}, err
		}
		slog.InfoContext(ctx, "purged expired idempotency keys", "count", n)
		return HousekeepingResult{Task: task, Purged: n}, nil
	}
	return HousekeepingResult{}, fmt.Errorf("housekeeping task %q: unknown (known: %s)", task, TaskPurgeIdempotencyKeys)
}
