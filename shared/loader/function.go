package loader

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
)

// NewFunction builds the warehouse-loader function from the settings env declares for it
// (settings.Loader: LOADER_TABLES), loading into wh what objects reads, asking builds for what it
// committed (an SQS queue in Lambda, the local one in the stack; nil for none), and writing its
// Embedded Metric Format lines to metrics (stdout in Lambda, a file locally). Its Lambda
// (functions/warehouse-loader) and the local stack both build it here, so both write the same
// metrics. The warehouse is the deployment's: Snowflake in AWS, DuckDB locally.
func NewFunction(env *settings.Env, wh Warehouse, objects ObjectReader, builds BuildRequests, metrics io.Writer, logger *slog.Logger) (*Handler, error) {
	tables, err := warehouse.ParseTables(env.Get("LOADER_TABLES"))
	if err := errors.Join(err, env.Err()); err != nil {
		return nil, fmt.Errorf("warehouse-loader settings: %w", err)
	}
	if metrics == nil {
		return nil, errors.New("warehouse-loader: no metrics writer")
	}
	if logger == nil {
		logger = slog.Default()
	}
	opts := []Option{WithTables(tables), WithEMF(metrics), WithLogger(logger)}
	if builds != nil {
		opts = append(opts, WithBuildRequests(builds))
	}
	return NewHandler(wh, objects, opts...), nil
}
