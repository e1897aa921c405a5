package dbtrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/fin-orchestrator/fin-orchestrator/shared/awssecrets"
	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
)

// Deps are what the deployment supplies beside the settings.
type Deps struct {
	// Output receives dbt's console output (stderr in Lambda, a rotated file locally).
	Output io.Writer
	// Metrics receives each build's Embedded Metric Format lines (stdout in Lambda, a file locally).
	Metrics io.Writer
	// Local only: CPU priority, the warehouse turn, defaults a user may override, the models
	// the warehouse lacks (Config).
	Nice        int
	Lock        Locker
	EnvDefaults []string
	// Cut reads the published cut back from the warehouse (Config.Cut); nil reports none.
	Cut     CutReader
	Missing func(context.Context) ([]string, error)
	// Requests is the build-request queue, read after each build (Config.Requests); nil reads
	// none. Built is told each build but an invocation's last (Config.Built).
	Requests Requests
	Built    func(Summary, error)
}

// NewFunction builds the dbt-runner function from the settings env declares for it
// (settings.DBT): which dbt, project, profiles, target and work folder, the Snowflake key-pair
// secret (SNOWFLAKE_SECRET_ID, read through Secrets Manager and handed to dbt's process only),
// and the variables dbt's profiles read, handed to dbt. Its Lambda (functions/dbt-runner) and the
// local stack both build it here.
func NewFunction(ctx context.Context, env *settings.Env, deps Deps, log *slog.Logger) (func(context.Context, json.RawMessage) (Summary, error), error) {
	cfg, err := ConfigFrom(ctx, env, deps)
	if err != nil {
		return nil, err
	}
	return Handler(cfg, log), nil
}

// ConfigFrom is the Config NewFunction runs with.
func ConfigFrom(ctx context.Context, env *settings.Env, deps Deps) (Config, error) {
	cfg := Config{
		DBT: env.Get("DBT_BIN"), ProjectDir: env.Get("DBT_PROJECT_DIR"), ProfilesDir: env.Get("DBT_PROFILES_DIR"),
		Target: env.Get("DBT_TARGET"), WorkDir: env.Get("DBT_WORK_DIR"),
		Output: deps.Output, EMF: deps.Metrics, Nice: deps.Nice, Lock: deps.Lock, EnvDefaults: deps.EnvDefaults,
		Cut: deps.Cut, Missing: deps.Missing, Requests: deps.Requests, Built: deps.Built,
		Env: env.DbtEnv(),
	}
	var errs []error
	if id := env.Get("SNOWFLAKE_SECRET_ID"); id != "" {
		secret, err := awssecrets.FromEnv(env).String(ctx, id)
		if err == nil {
			var sf []string
			sf, err = SnowflakeEnv(secret)
			cfg.Env = append(cfg.Env, sf...)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("read the Snowflake secret %s: %w", id, err))
		}
	}
	if strings.TrimSpace(cfg.ProjectDir) == "" {
		errs = append(errs, errors.New("DBT_PROJECT_DIR is empty"))
	}
	if err := errors.Join(append(errs, env.Err())...); err != nil {
		return Config{}, fmt.Errorf("dbt-runner settings: %w", err)
	}
	return cfg, nil
}
