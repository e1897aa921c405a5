// Command dbt-runner is the scheduled Lambda function that runs the dbt project (dbt build) and
// fails the invocation when a model or test fails. It runs as a container image (see
// Dockerfile) holding this bootstrap, Python and dbt-snowflake. Its settings:
// docs/configuration.md.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/fin-orchestrator/fin-orchestrator/shared/awssecrets"
	"github.com/fin-orchestrator/fin-orchestrator/shared/dbtrun"
	"github.com/fin-orchestrator/fin-orchestrator/shared/history"
	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/snowflakeapi"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	env := settings.ForFunction(settings.DBT, settings.Process())
	// dbt's log lines go to CloudWatch beside the summary (its own file, none by default, would
	// stay in this container's /tmp); the metrics are EMF lines on stdout.
	ctx := context.Background()
	// The build's published cut is read back from gold.cut through Snowflake's SQL REST API, as
	// the API reads it (same SNOWFLAKE_* settings and key-pair secret as dbt's profile).
	var cut dbtrun.CutReader
	if env.Get("SNOWFLAKE_DATABASE") != "" {
		sfCfg, err := snowflakeapi.ConfigFromEnv(ctx, env.Get, awssecrets.FromEnv(env))
		if err != nil {
			fail(log, err)
		}
		sfCfg.Application = "fin-orchestrator-dbt-runner"
		sf, err := snowflakeapi.New(sfCfg)
		if err != nil {
			fail(log, err)
		}
		sf.DB().SetMaxOpenConns(1)
		cut = history.New(history.DB{DB: sf.DB()})
	}
	// After each build, the requests that waited on the build queue meanwhile.
	var requests dbtrun.Requests
	if url := env.Get("BUILD_QUEUE_URL"); url != "" {
		awsCfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			fail(log, err)
		}
		requests = dbtrun.SQSRequests{Client: sqs.NewFromConfig(awsCfg), QueueURL: url}
	}
	h, err := dbtrun.NewFunction(ctx, env, dbtrun.Deps{Output: os.Stderr, Metrics: os.Stdout, Cut: cut, Requests: requests}, log)
	if err != nil {
		fail(log, err)
	}
	lambda.Start(h)
}

func fail(log *slog.Logger, err error) {
	log.Error("dbt-runner cannot start", "error", err)
	os.Exit(1)
}
