// Command warehouse-loader is the Lambda that loads each new bronze object (S3 ObjectCreated
// event) into its Snowflake RAW table. It reads configuration and wires the handler; the work is
// in shared/loader and shared/warehouse/snowflake. Its settings: docs/configuration.md.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/fin-orchestrator/fin-orchestrator/shared/awssecrets"
	"github.com/fin-orchestrator/fin-orchestrator/shared/loader"
	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/snowflake"
)

func main() {
	slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stderr, nil)))
	ctx := context.Background()
	env := settings.ForFunction(settings.Loader, settings.Process())
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fail("load AWS configuration", err)
	}
	// The key-pair secret, through the same reader as the API and the dbt-runner.
	cfg, err := snowflake.ConfigFromEnv(ctx, env.Get, awssecrets.FromEnv(env))
	if err != nil {
		fail("configure", err)
	}
	wh, err := snowflake.Open(ctx, cfg)
	if err != nil {
		fail("open Snowflake", err)
	}
	// After each commit, the queue dbt builds from (template.yaml BuildRequests).
	var builds loader.BuildRequests
	if url := env.Get("BUILD_QUEUE_URL"); url != "" {
		builds = loader.SQSBuildRequests{Client: sqs.NewFromConfig(awsCfg), QueueURL: url}
	}
	h, err := loader.NewFunction(env, wh, loader.S3Objects{Client: s3.NewFromConfig(awsCfg)}, builds, os.Stdout, slog.Default())
	if err != nil {
		fail("configure", err)
	}
	lambda.Start(h.Handle)
}

func fail(what string, err error) {
	slog.Error("warehouse-loader cannot start", "step", what, "error", err)
	os.Exit(1)
}
