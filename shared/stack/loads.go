package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
	"github.com/fin-orchestrator/fin-orchestrator/shared/lambdalocal"
	"github.com/fin-orchestrator/fin-orchestrator/shared/loader"
	"github.com/fin-orchestrator/fin-orchestrator/shared/objectstore"
	"github.com/fin-orchestrator/fin-orchestrator/shared/s3local"
	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
)

// objectCreated queues the records of an S3 notification that the loader's S3 event rules
// (prefix, suffix) match, as the bucket's notification configuration would.
func (s *Stack) objectCreated(ev events.S3Event) {
	// An entry put under dlq/ from outside the stack (its own writers say so themselves).
	for _, r := range ev.Records {
		if strings.HasPrefix(r.S3.Object.Key, "dlq/") {
			s.dlq.stale()
		}
	}
	if kept, ok := lambdalocal.MatchS3(s.tpl.Functions[loaderFunction].S3, ev); ok {
		s.loads <- kept
	}
}

// loadLane is the lane of the loader's delivery an S3 notification takes: its object's bronze
// table (bronze.ParseKey, snapshot windows' keys included), so that a table's objects load in the
// order they were written and no table's objects wait behind another's. A key outside the bronze
// grammar (the loader refuses it) shares the lane "". In AWS every notification is an invocation
// of its own, beside the others; locally a table's objects still take turns, and the warehouse
// file's turn (one load at a time) is the same for every lane.
func loadLane(ev events.S3Event) string {
	if len(ev.Records) == 0 {
		return ""
	}
	key := ev.Records[0].S3.Object.URLDecodedKey
	if key == "" {
		key = ev.Records[0].S3.Object.Key
	}
	k, err := bronze.ParseKey(key)
	if err != nil {
		return ""
	}
	return k.Table
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

// catchUp has the loader load every bronze object its ledger does not hold: S3 notifications are
// at-least-once at best, and a crash between an object's write and its load would otherwise
// leave it unloaded. At start and every loader.FullCatchUpEvery it lists the whole bucket (a
// replaced warehouse is refilled from the lake; a crash's lost events may be of any date); every
// 30 s between, only each table's objects of its newest loaded days (loader.RecentObjects), a
// listing that follows the change, not the lake. Which objects the ledger lacks is found as a
// chore (unloadedObjects); their loads take RAW's writer, which every other load and dbt's
// snapshot wait for, so they run at the stack's priority.
func (s *Stack) catchUp(ctx context.Context) error {
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	chores := newChoreThread(ctx)
	full := unloadedObjects{s.objects, s.wh.Loaded, chores}
	recent := unloadedObjects{loader.RecentObjects{Objects: s.objects, HighWaters: s.wh.HighWaters}, s.wh.Loaded, chores}
	var listedAll time.Time
	for {
		list, isFull := recent, time.Since(listedAll) >= loader.FullCatchUpEvery
		if isFull {
			list = full
		}
		began := time.Now()
		// A full pass counts only once it has loaded everything it found: until then the next
		// pass lists the whole bucket again, as every pass did before the recent listing.
		if err := s.loader.CatchUp(ctx, s.cfg.Bucket, list); err != nil && ctx.Err() == nil {
			s.log.Warn("catch-up", "full", isFull, "err", err)
		} else if isFull {
			listedAll = began
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// lambdaCredentials are what Lambda puts in a function's environment for S3: its region and its
// role's credentials; locally the stack's S3, its region and its key pair, forced so that a
// user's own AWS_* variables never reach it. Only the region and the endpoint for an S3_ENDPOINT
// without S3_ACCESS_KEY: the functions' default chain then.
func (s *Stack) lambdaCredentials() map[string]string {
	env := map[string]string{"AWS_REGION": s3local.Region, "S3_ENDPOINT": s.S3URL}
	if s.s3Creds.AccessKeyID != "" {
		env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = s.s3Creds.AccessKeyID, s.s3Creds.SecretAccessKey
	}
	return env
}

// landingS3 is the S3 client cdc-landing's main builds from its environment. With the local S3's
// key pair, a user's AWS_SESSION_TOKEN must not come along: the key is not temporary.
func (s *Stack) landingS3() (*minio.Client, error) {
	env := FunctionEnv(s.tpl, landingFunction, settings.Landing, nil, s.lambdaCredentials())
	return objectstore.Open(objectstore.ConfigFromEnv(func(name string) string {
		if name == "AWS_SESSION_TOKEN" && s.s3Creds.AccessKeyID != "" {
			return ""
		}
		return env.Get(name)
	}))
}

// loaderS3 is the AWS SDK client warehouse-loader's main builds, from its environment, pointed at
// the stack's S3.
func (s *Stack) loaderS3() *s3.Client {
	env := FunctionEnv(s.tpl, loaderFunction, settings.Loader, nil, s.lambdaCredentials())
	key, secret := env.Get("AWS_ACCESS_KEY_ID"), env.Get("AWS_SECRET_ACCESS_KEY")
	if key == "" {
		key, secret = "local", "local"
	}
	return s3.New(s3.Options{Region: s3local.Region, BaseEndpoint: aws.String(s.S3URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(key, secret, "")})
}

// unloadedObjects lists the objects of a bucket that the load ledger does not hold (with that
// ETag) yet: the catch-up's listing with the ledger read of each object done as a chore
// (choreThread), off the build's CPU. Every object listed is read, a ledger query each (a few
// milliseconds), and nearly all are loaded already: the passes between full ones list only the
// newest days (catchUp). The loader checks the ledger again before it loads, so an object loaded
// between the two reads is still a duplicate.
type unloadedObjects struct {
	list   loader.ObjectLister
	loaded func(ctx context.Context, key, etag string) (bool, error)
	chores *choreThread
}

func (u unloadedObjects) ListObjects(ctx context.Context, bucket, prefix string, fn func(key, etag string) error) error {
	var missing [][2]string
	var err error
	u.chores.run(func() {
		err = u.list.ListObjects(ctx, bucket, prefix, func(key, etag string) error {
			// Unknown (a failed read) counts as not loaded: the loader reads the ledger again.
			if ok, lerr := u.loaded(ctx, key, warehouse.NormalizeETag(etag)); lerr != nil || !ok {
				missing = append(missing, [2]string{key, etag})
			}
			return ctx.Err()
		})
	})
	for _, m := range missing {
		if ferr := fn(m[0], m[1]); ferr != nil {
			return errors.Join(err, ferr)
		}
	}
	return err
}
