// Command dbt-runner is the scheduled Lambda function that runs the dbt project (dbt build) and
// fails the invocation when a model or test fails. It runs as a container image (see
// Dockerfile) holding this bootstrap, Python and dbt-snowflake.
package main

import (
	"context"
	"log/slog"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/fin-orchestrator/fin-orchestrator/shared/awssecrets"
	"github.com/fin-orchestrator/fin-orchestrator/shared/dbtrun"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg := dbtrun.Config{
		DBT:         env("DBT_BIN", "dbt"),
		ProjectDir:  env("DBT_PROJECT_DIR", "/var/task/dbt"),
		ProfilesDir: os.Getenv("DBT_PROFILES_DIR"),
		Target:      env("DBT_TARGET", "snowflake"),
		// Lambda's only writable place.
		WorkDir: env("DBT_WORK_DIR", "/tmp/dbt"),
		// dbt's log lines go to CloudWatch beside the summary (its own file, none by default,
		// would stay in this container's /tmp).
		Output: os.Stderr,
		EMF:    os.Stdout,
	}
	// Key-pair credentials from Secrets Manager, handed to dbt's process only.
	if id := os.Getenv("SNOWFLAKE_SECRET_ID"); id != "" {
		secret, err := awssecrets.Client{}.String(context.Background(), id)
		if err == nil {
			cfg.Env, err = dbtrun.SnowflakeEnv(secret)
		}
		if err != nil {
			log.Error("read the Snowflake secret", "secret", id, "error", err)
			os.Exit(1)
		}
	}
	if strings.TrimSpace(cfg.ProjectDir) == "" {
		log.Error("DBT_PROJECT_DIR is empty")
		os.Exit(1)
	}
	lambda.Start(dbtrun.Handler(cfg, log))
}

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
