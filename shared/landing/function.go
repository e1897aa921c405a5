package landing

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
)

// NewFunction builds the cdc-landing function from the settings env declares for it
// (settings.Landing: LAKE_BUCKET, FAIL_BATCH), writing through s3 and its Embedded Metric Format
// lines to metrics (stdout in Lambda, a file locally). Its Lambda (functions/cdc-landing) and the
// local stack both build it here, so both write the same metrics.
func NewFunction(env *settings.Env, s3 ObjectPutter, metrics io.Writer, logger *slog.Logger) (*Handler, error) {
	failBatch, err := env.Bool("FAIL_BATCH")
	bucket := env.Get("LAKE_BUCKET")
	if err := errors.Join(err, env.Err()); err != nil {
		return nil, fmt.Errorf("cdc-landing settings: %w", err)
	}
	if metrics == nil {
		return nil, errors.New("cdc-landing: no metrics writer")
	}
	return NewHandler(Config{Bucket: bucket, FailBatch: failBatch, EMF: metrics, Logger: logger}, s3)
}
