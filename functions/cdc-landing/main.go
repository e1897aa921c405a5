// Command cdc-landing is the MSK / self-managed Kafka triggered Lambda that lands Debezium change
// events in the bronze layer (see shared/landing). Its settings: docs/configuration.md.
// Credentials come from the function's role (AWS_* variables that Lambda sets).
package main

import (
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/fin-orchestrator/fin-orchestrator/shared/landing"
	"github.com/fin-orchestrator/fin-orchestrator/shared/objectstore"
	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
)

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	env := settings.ForFunction(settings.Landing, settings.Process())
	s3, err := objectstore.Open(objectstore.ConfigFromEnv(env.Get))
	if err != nil {
		logger.Error("cdc-landing: S3 client", "err", err)
		os.Exit(1)
	}
	h, err := landing.NewFunction(env, s3, os.Stdout, logger)
	if err != nil {
		logger.Error("cdc-landing: configuration", "err", err)
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}
