package landing

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
)

type nopPutter struct{}

func (nopPutter) PutObject(context.Context, string, string, io.Reader, int64, minio.PutObjectOptions) (minio.UploadInfo, error) {
	return minio.UploadInfo{}, nil
}

func TestNewFunctionSettings(t *testing.T) {
	cases := []struct {
		name     string
		function string
		env      map[string]string
		errHas   string
		failFast bool
	}{
		{"bucket", settings.Landing, map[string]string{"LAKE_BUCKET": "lake"}, "", false},
		{"FAIL_BATCH", settings.Landing, map[string]string{"LAKE_BUCKET": "lake", "FAIL_BATCH": "true"}, "", true},
		{"FAIL_BATCH not a boolean", settings.Landing, map[string]string{"LAKE_BUCKET": "lake", "FAIL_BATCH": "sometimes"}, "FAIL_BATCH", false},
		{"no bucket", settings.Landing, nil, "no bucket", false},
		{"another function's environment", settings.Loader, map[string]string{"LAKE_BUCKET": "lake"}, "warehouse-loader reads FAIL_BATCH", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := NewFunction(settings.ForFunction(tc.function, settings.Values(tc.env)), nopPutter{}, &bytes.Buffer{}, nil)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("err = %v, want %q", err, tc.errHas)
				}
				return
			}
			if err != nil || h.cfg.Bucket != "lake" || h.cfg.FailBatch != tc.failFast || h.cfg.EMF == nil {
				t.Fatalf("handler config %+v, %v", h.cfg, err)
			}
		})
	}
}
