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

	"github.com/fin-orchestrator/fin-orchestrator/shared/dbtrun"
	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	env := settings.ForFunction(settings.DBT, settings.Process())
	// dbt's log lines go to CloudWatch beside the summary (its own file, none by default, would
	// stay in this container's /tmp); the metrics are EMF lines on stdout.
	h, err := dbtrun.NewFunction(context.Background(), env, dbtrun.Deps{Output: os.Stderr, Metrics: os.Stdout}, log)
	if err != nil {
		log.Error("dbt-runner cannot start", "error", err)
		os.Exit(1)
	}
	lambda.Start(h)
}
