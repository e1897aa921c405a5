// Command cdc-landing is the MSK / self-managed Kafka triggered Lambda that lands Debezium change
// events in the bronze layer (see shared/landing).
//
// Configuration (environment):
//
//	LAKE_BUCKET   bucket receiving bronze/ and dlq/ objects (required)
//	S3_ENDPOINT   an S3-compatible endpoint (http://127.0.0.1:9000); empty means Amazon S3
//	AWS_REGION    set by Lambda
//	FAIL_BATCH    "true" when the trigger lacks FunctionResponseTypes ReportBatchItemFailures:
//	              any failure then fails the whole invocation, so nothing unlanded is acknowledged
//
// Credentials come from the function's role (AWS_* variables that Lambda sets).
package main

import (
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/fin-orchestrator/fin-orchestrator/shared/landing"
	"github.com/fin-orchestrator/fin-orchestrator/shared/objectstore"
)

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	s3, err := objectstore.Open(objectstore.Config{
		Endpoint: os.Getenv("S3_ENDPOINT"),
		Region:   os.Getenv("AWS_REGION"),
	})
	if err != nil {
		logger.Error("cdc-landing: S3 client", "err", err)
		os.Exit(1)
	}
	h, err := landing.NewHandler(landing.Config{
		Bucket:    os.Getenv("LAKE_BUCKET"),
		FailBatch: os.Getenv("FAIL_BATCH") == "true",
		EMF:       os.Stdout,
		Logger:    logger,
	}, s3)
	if err != nil {
		logger.Error("cdc-landing: configuration", "err", err)
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}
