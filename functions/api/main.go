// Command api is the banking REST API as a Lambda function behind API Gateway (REST or HTTP API),
// which also runs the housekeeping template.yaml schedules for it. Its settings: docs/configuration.md.
package main

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/fin-orchestrator/fin-orchestrator/shared/api"
	"github.com/fin-orchestrator/fin-orchestrator/shared/awssecrets"
	"github.com/fin-orchestrator/fin-orchestrator/shared/database"
	"github.com/fin-orchestrator/fin-orchestrator/shared/history"
	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/snowflakeapi"
)

func main() {
	slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stdout, nil)))
	ctx := context.Background()
	env := settings.ForFunction(settings.API, settings.Process())
	secrets := awssecrets.FromEnv(env)
	// DATABASE_URL, or the "url" of the Secrets Manager secret DATABASE_SECRET_ARN names.
	url, err := database.URLFrom(ctx, env, secrets)
	if err == nil && url == "" {
		err = errors.New("set DATABASE_SECRET_ARN (or DATABASE_URL)")
	}
	if err != nil {
		fail("read database url", err)
	}
	// One request at a time per container: two connections (a request and a health check) suffice.
	pool, err := database.Open(ctx, url, 2)
	if err != nil {
		fail("open database", err)
	}
	// History reads Snowflake's gold marts through the SQL REST API when SNOWFLAKE_DATABASE is set
	// (the loader's SNOWFLAKE_* and SNOWFLAKE_SECRET_ID variables, with a read-only role); without
	// it the history endpoints answer 503. Not gosnowflake: it would put the bootstrap over budget.
	var hist api.History
	if env.Get("SNOWFLAKE_DATABASE") != "" {
		sfCfg, err := snowflakeapi.ConfigFromEnv(ctx, env.Get, secrets)
		if err != nil {
			fail("configure Snowflake", err)
		}
		sfCfg.Application = "fin-orchestrator-api"
		sf, err := snowflakeapi.New(sfCfg)
		if err != nil {
			fail("configure Snowflake", err)
		}
		// One request at a time per container: two statements at once at most.
		sf.DB().SetMaxOpenConns(2)
		hist = history.New(history.DB{DB: sf.DB()})
	}
	// No development secret file in Lambda: FIN_JWKS_URL (or FIN_JWT_SECRET) must be set.
	fn, err := api.NewFunction(ctx, env, api.Deps{Pool: pool, History: hist, Metrics: os.Stdout})
	if err != nil {
		fail("build api", err)
	}
	lambda.Start(fn.Handler())
}

func fail(what string, err error) {
	slog.Error(what, "error", err)
	os.Exit(1)
}
