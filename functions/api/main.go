// Command api is the banking REST API as a Lambda function behind API Gateway (REST or HTTP API).
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/fin-orchestrator/fin-orchestrator/shared/api"
	"github.com/fin-orchestrator/fin-orchestrator/shared/awssecrets"
	"github.com/fin-orchestrator/fin-orchestrator/shared/database"
	"github.com/fin-orchestrator/fin-orchestrator/shared/history"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/snowflakeapi"
)

func main() {
	slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stdout, nil)))
	ctx := context.Background()
	// No development secret file in Lambda: FIN_JWKS_URL (or FIN_JWT_SECRET) must be set.
	auth, err := api.AuthConfigFromEnv("")
	if err != nil {
		fail("read auth configuration", err)
	}
	// DATABASE_URL, or the "url" of the Secrets Manager secret DATABASE_SECRET_ARN names.
	url, err := awssecrets.DatabaseURL(ctx, awssecrets.Client{})
	if err != nil {
		fail("read database url", err)
	}
	if url == "" {
		url = database.URL()
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
	if os.Getenv("SNOWFLAKE_DATABASE") != "" {
		sfCfg, err := snowflakeapi.ConfigFromEnv(ctx, os.Getenv, awssecrets.Client{})
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
	app, err := api.New(ctx, api.Config{Pool: pool, Auth: auth, History: hist})
	if err != nil {
		fail("build api", err)
	}
	lambda.Start(api.LambdaHandler(app))
}

func fail(what string, err error) {
	slog.Error(what, "error", err)
	os.Exit(1)
}
