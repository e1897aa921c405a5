package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/fin-orchestrator/fin-orchestrator/shared/lambdalocal"
	"github.com/fin-orchestrator/fin-orchestrator/shared/s3local"
)

// objectCreated queues the records of an S3 notification that the loader's S3 event rules
// (prefix, suffix) match, as the bucket's notification configuration would.
func (s *Stack) objectCreated(ev events.S3Event) {
	if kept, ok := lambdalocal.MatchS3(s.tpl.Functions[loaderFunction].S3, ev); ok {
		s.loads <- kept
	}
}

// keepFailed writes an invocation that failed every retry to StateDir/failed-invocations, for
// replay, and counts it for the console.
func (s *Stack) keepFailed(fn string, ev any, cause error) {
	dir := filepath.Join(s.cfg.StateDir, "failed-invocations")
	os.MkdirAll(dir, 0o750)
	body, _ := json.Marshal(map[string]any{"function": fn, "error": cause.Error(), "event": ev, "time": time.Now().UTC()})
	name := filepath.Join(dir, fmt.Sprintf("%s-%d.json", fn, time.Now().UnixNano()))
	if err := os.WriteFile(name, body, 0o640); err != nil {
		s.log.Error("cannot keep failed invocation", "err", err)
	}
	s.mu.Lock()
	s.failures++
	s.mu.Unlock()
	s.log.Error("invocation failed after retries; kept for replay", "function", fn, "file", name, "err", cause)
}

// catchUp has the loader load, at start and every 30 s, every bronze object its ledger does not
// hold: S3 notifications are at-least-once at best, and a crash between an object's write and its
// load would otherwise leave it unloaded.
func (s *Stack) catchUp(ctx context.Context) error {
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		if err := s.loader.CatchUp(ctx, s.cfg.Bucket, s.objects); err != nil && ctx.Err() == nil {
			s.log.Warn("catch-up", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// sdkS3 is the AWS SDK client the loader reads objects with, pointed at the stack's S3.
func (s *Stack) sdkS3() *s3.Client {
	key, secret := s.cfg.S3AccessKey, s.cfg.S3SecretKey
	if key == "" {
		key, secret = "local", "local"
	}
	return s3.New(s3.Options{Region: s3local.Region, BaseEndpoint: aws.String(s.S3URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(key, secret, "")})
}
