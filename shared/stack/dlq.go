package stack

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bearer"
	"github.com/fin-orchestrator/fin-orchestrator/shared/landing"
)

// dlqHandlers list the DLQ (replaying is an operator's action: POST /api/actions/dlq-replay).
func (s *Stack) dlqHandlers() map[string]http.Handler {
	return map[string]http.Handler{
		"GET /dlq": bearer.Require(s.token, "fin console", ".fin/sql.token", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			type item struct {
				Key    string `json:"key"`
				Topic  string `json:"topic"`
				Offset int64  `json:"offset"`
				Reason string `json:"reason"`
			}
			items := []item{}
			for obj := range s.s3.ListObjects(r.Context(), s.cfg.Bucket, minio.ListObjectsOptions{Prefix: "dlq/", Recursive: true}) {
				if obj.Err != nil {
					http.Error(w, obj.Err.Error(), http.StatusBadGateway)
					return
				}
				e, err := s.readDLQ(r.Context(), obj.Key)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadGateway)
					return
				}
				items = append(items, item{obj.Key, e.Topic, e.Offset, e.Reason})
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(items)
		})),
	}
}

func (s *Stack) readDLQ(ctx context.Context, key string) (landing.DLQEntry, error) {
	var e landing.DLQEntry
	obj, err := s.s3.GetObject(ctx, s.cfg.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return e, fmt.Errorf("read %s: %w", key, err)
	}
	defer obj.Close()
	if err := json.NewDecoder(obj).Decode(&e); err != nil {
		return e, fmt.Errorf("read %s: %w", key, err)
	}
	return e, nil
}

// replayDLQ sends an entry's original bytes back to their topic (to be landed again under new
// offsets, once the cause is fixed), and moves the entry to dlq-replayed/.
func (s *Stack) replayDLQ(ctx context.Context, producer *kgo.Client, key string) error {
	defer s.dlq.stale()
	e, err := s.readDLQ(ctx, key)
	if err != nil {
		return err
	}
	rec := &kgo.Record{Topic: e.Topic}
	if rec.Key, err = base64.StdEncoding.DecodeString(e.KeyBase64); err != nil {
		return fmt.Errorf("replay %s: key: %w", key, err)
	}
	if rec.Value, err = base64.StdEncoding.DecodeString(e.ValueBase64); err != nil {
		return fmt.Errorf("replay %s: value: %w", key, err)
	}
	if err := producer.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("replay %s to %s: %w", key, e.Topic, err)
	}
	done := "dlq-replayed/" + strings.TrimPrefix(key, "dlq/")
	raw, _ := json.Marshal(e)
	if _, err := s.s3.PutObject(ctx, s.cfg.Bucket, done, bytes.NewReader(raw), int64(len(raw)),
		minio.PutObjectOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("replayed %s, but keep it as %s: %w", key, done, err)
	}
	return s.s3.RemoveObject(ctx, s.cfg.Bucket, key, minio.RemoveObjectOptions{})
}
