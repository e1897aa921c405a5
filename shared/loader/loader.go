// Package loader is the S3-event handler that loads bronze objects into the warehouse: one RAW
// table per source table, each object once (a ledger keyed by object key and ETag, written in the
// same warehouse transaction as the rows).
//
// The same Handler runs in the warehouse-loader Lambda (Snowflake) and in the local runtime
// (embedded DuckDB): it only sees events.S3Event values.
package loader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
	"github.com/fin-orchestrator/fin-orchestrator/shared/buildrequest"
	"github.com/fin-orchestrator/fin-orchestrator/shared/retry"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
)

// Warehouse is where bronze objects are loaded.
type Warehouse interface {
	// Loaded reports whether key is in the load ledger with etag. It must be cheap: it is how a
	// duplicate event is skipped before anything is downloaded.
	Loaded(ctx context.Context, key, etag string) (bool, error)
	// Load writes the object's rows and its ledger row in one transaction, or nothing. It must be
	// idempotent and safe for concurrent calls with the same object: one of them loads, the others
	// report Duplicate.
	Load(ctx context.Context, obj warehouse.Object) (warehouse.Result, error)
}

// ObjectReader reads objects from the bucket that raised the event.
type ObjectReader interface {
	// ReadObject copies the object to w and returns its ETag. An absent object gives an error
	// wrapping ErrObjectNotFound.
	ReadObject(ctx context.Context, bucket, key string, w io.Writer) (etag string, err error)
}

// ObjectLister lists a bucket's objects under a prefix, with their ETags.
type ObjectLister interface {
	ListObjects(ctx context.Context, bucket, prefix string, fn func(key, etag string) error) error
}

// CatchUp loads every bronze object of bucket that is not loaded yet, as if its event had come:
// S3 servers that notify by webhook (versitygw) do not retry a lost event, and a stack that was
// down missed its events. Objects already loaded are duplicates and cost a ledger read. Like
// Handle it goes through every object and joins the failures.
func (h *Handler) CatchUp(ctx context.Context, bucket string, objects ObjectLister) error {
	inv := newCounters()
	var errs []error
	err := objects.ListObjects(ctx, bucket, "bronze/", func(key, etag string) error {
		var rec events.S3EventRecord
		rec.EventName = "ObjectCreated:Put"
		rec.S3.Bucket.Name = bucket
		rec.S3.Object.Key, rec.S3.Object.URLDecodedKey, rec.S3.Object.ETag = url.QueryEscape(key), key, etag
		if err := h.handleRecord(ctx, rec, inv); err != nil {
			errs = append(errs, err)
		}
		return ctx.Err()
	})
	// Only what the catch-up itself loaded: every other object it lists is a duplicate.
	if err := h.requestBuild(ctx, inv, false); err != nil {
		errs = append(errs, err)
	}
	h.metrics.add(inv)
	return errors.Join(append(errs, err)...)
}

// ErrObjectNotFound: the event names an object the bucket does not hold (deleted since, or an
// event from another bucket). Permanent: S3 reads after writes consistently, so an object its
// own event cannot find was deleted.
var ErrObjectNotFound = retry.Permanent(errors.New("object not found"))

// Failure reasons, as counted in Metrics.Failures.
const (
	ReasonUnknownTable  = "unknown_table"
	ReasonMissingObject = "missing_object"
	ReasonBadObject     = "bad_object"
	ReasonBadKey        = "bad_key"
	ReasonNothingLoaded = "nothing_loaded"
	ReasonWarehouse     = "warehouse"
)

// Handler handles S3 events for bronze objects.
type Handler struct {
	wh       Warehouse
	objects  ObjectReader
	tables   []string
	metrics  *counters
	emf      io.Writer
	log      *slog.Logger
	attempts int
	backoff  time.Duration
	builds   BuildRequests
}

// Option configures a Handler.
type Option func(*Handler)

// WithTables sets the source tables whose objects are loaded (default warehouse.DefaultTables);
// objects of any other table fail as unknown tables.
func WithTables(tables []string) Option { return func(h *Handler) { h.tables = tables } }

// WithEMF writes each invocation's counts as a CloudWatch Embedded Metric Format line to w (the
// Lambda's stdout), which CloudWatch turns into metrics with no API call.
func WithEMF(w io.Writer) Option { return func(h *Handler) { h.emf = w } }

// WithRetry sets how a load that failed for a reason that may pass (the warehouse, a load that
// found no rows) is tried again: attempts in all, waiting backoff, then twice that, and so on
// (default 3 attempts from 250 ms). Permanent failures (retry.IsPermanent) are tried once. Past the attempts the
// failure is returned, so the invocation's own retries and failure destination still see it.
func WithRetry(attempts int, backoff time.Duration) Option {
	return func(h *Handler) { h.attempts, h.backoff = max(attempts, 1), backoff }
}

// BuildRequests is where the handler asks for a build once a load has committed (an SQS queue):
// the body names the RAW tables that got rows (a buildrequest.Message).
type BuildRequests interface {
	SendMessage(ctx context.Context, body string) error
}

// WithBuildRequests sends a buildrequest.Message to q after each invocation that committed rows.
func WithBuildRequests(q BuildRequests) Option { return func(h *Handler) { h.builds = q } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(h *Handler) { h.log = l } }

// NewHandler returns a handler loading into wh the objects objects reads.
func NewHandler(wh Warehouse, objects ObjectReader, opts ...Option) *Handler {
	h := &Handler{wh: wh, objects: objects, tables: warehouse.DefaultTables, metrics: newCounters(), log: slog.Default(),
		attempts: 3, backoff: 250 * time.Millisecond}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Metrics are the handler's counts since it was made.
func (h *Handler) Metrics() Metrics { return h.metrics.snapshot() }

// Handle loads the bronze objects an S3 event names. Every record is tried, whatever happened to
// the ones before it; the error joins the failures, so the invocation is retried (every object
// already loaded is then a no-op) and, past the retries, kept in the function's failure
// destination with its event.
func (h *Handler) Handle(ctx context.Context, event events.S3Event) error {
	inv := newCounters()
	var errs []error
	for _, rec := range event.Records {
		if err := h.handleRecord(ctx, rec, inv); err != nil {
			errs = append(errs, err)
		}
	}
	// A duplicate's rows were committed by an invocation that may have failed before its request
	// went out (and so was retried): ask again, as a request is harmless twice.
	if err := h.requestBuild(ctx, inv, true); err != nil {
		errs = append(errs, err)
	}
	h.metrics.add(inv)
	if h.emf != nil {
		var oldest time.Time
		for _, rec := range event.Records {
			if !rec.EventTime.IsZero() && (oldest.IsZero() || rec.EventTime.Before(oldest)) {
				oldest = rec.EventTime
			}
		}
		var latency time.Duration
		if !oldest.IsZero() {
			latency = time.Since(oldest)
		}
		writeEMF(h.emf, inv.snapshot(), latency)
	}
	return errors.Join(errs...)
}

func (h *Handler) handleRecord(ctx context.Context, rec events.S3EventRecord, m *counters) error {
	key, err := objectKey(rec.S3.Object)
	if err != nil {
		return h.fail(m, rec.S3.Object.Key, 0, retry.Permanent(fmt.Errorf("object key %q in event: %w", rec.S3.Object.Key, err)))
	}
	if !isObjectCreated(rec.EventName) {
		m.inc(&m.Ignored)
		h.log.Debug("event ignored", "event", rec.EventName, "key", key)
		return nil
	}
	if strings.HasPrefix(key, "dlq/") {
		// Dead letters are read by people (and replayed by the landing), never loaded.
		m.inc(&m.DeadLetters)
		h.log.Warn("dead-letter object left unloaded", "bucket", rec.S3.Bucket.Name, "key", key)
		return nil
	}
	// The key reaches SQL only once it is one the landing can have written.
	k, err := bronze.ParseKey(key)
	if err != nil {
		return h.fail(m, key, 0, retry.Permanent(fmt.Errorf("load: %w", err)))
	}
	if !slices.Contains(h.tables, k.Table) {
		return h.fail(m, key, 0, fmt.Errorf("load %s: %w %q (loaded tables: %s)", key, warehouse.ErrUnknownTable, k.Table, strings.Join(h.tables, ", ")))
	}
	obj := warehouse.Object{
		Key: key, ETag: warehouse.NormalizeETag(rec.S3.Object.ETag), Table: k.Table,
		Fetch: func(ctx context.Context, w io.Writer) (string, error) {
			return h.objects.ReadObject(ctx, rec.S3.Bucket.Name, key, w)
		},
	}
	res, attempts, err := h.loadRetried(ctx, obj)
	switch {
	case err != nil:
		return h.fail(m, key, attempts, err)
	case res.Duplicate:
		m.touched(k.Table, true)
		return h.duplicate(m, key, obj.ETag)
	}
	if res.Rows > 0 {
		m.touched(k.Table, false)
	}
	m.inc(&m.ObjectsLoaded)
	m.addRows(res.Rows)
	if res.Replaced {
		m.inc(&m.Replaced)
	}
	h.log.Info("object loaded", "key", key, "table", k.Table, "rows", res.Rows, "replaced", res.Replaced)
	return nil
}

// loadRetried loads obj, trying again as WithRetry says, and returns how many tries it took.
func (h *Handler) loadRetried(ctx context.Context, obj warehouse.Object) (res warehouse.Result, attempts int, err error) {
	attempts, err = retry.Tries(ctx, h.policy(func(attempt int, wait time.Duration, err error) bool {
		// A load that ran out of time is left to the invocation's retry rather than cut off by
		// its timeout.
		if retry.IsPermanent(err) || errors.Is(err, context.DeadlineExceeded) {
			return false
		}
		h.log.Warn("load failed; trying again", "key", obj.Key, "reason", Reason(err), "attempt", attempt, "wait", wait, "err", err)
		return true
	}), func(ctx context.Context) (err error) {
		res, err = h.load(ctx, obj)
		return err
	})
	return res, attempts, err
}

// policy is how the handler tries a call again (WithRetry), again deciding past a failure.
func (h *Handler) policy(again func(attempt int, wait time.Duration, err error) bool) retry.Policy {
	return retry.Policy{Attempts: h.attempts, Backoff: retry.Backoff{First: h.backoff}, Again: again}
}

// load loads obj once: a ledger read first when the event has the ETag, so a duplicate event
// downloads nothing.
func (h *Handler) load(ctx context.Context, obj warehouse.Object) (warehouse.Result, error) {
	if obj.ETag != "" {
		dup, err := h.wh.Loaded(ctx, obj.Key, obj.ETag)
		if err != nil {
			return warehouse.Result{}, fmt.Errorf("load %s: %w", obj.Key, err)
		}
		if dup {
			return warehouse.Result{Duplicate: true}, nil
		}
	}
	return h.wh.Load(ctx, obj)
}

// requestBuild tells the build queue which tables got rows in this invocation (and, withDuplicates,
// which its duplicate events name), retrying as a load does. Past the attempts the error is the
// invocation's, so Lambda retries it; the retry finds the objects loaded and asks again.
func (h *Handler) requestBuild(ctx context.Context, m *counters, withDuplicates bool) error {
	if h.builds == nil {
		return nil
	}
	m.mu.Lock()
	set := maps.Clone(m.loadedTables)
	if withDuplicates {
		maps.Copy(set, m.duplicateTables)
	}
	m.mu.Unlock()
	if len(set) == 0 {
		return nil
	}
	body, _ := json.Marshal(buildrequest.Message{Tables: slices.Sorted(maps.Keys(set))})
	err := retry.Do(ctx, h.policy(nil), func(ctx context.Context) error { return h.builds.SendMessage(ctx, string(body)) })
	if err != nil {
		h.log.Error("build not requested", "request", string(body), "err", err)
		return fmt.Errorf("request a build of %s: %w", body, err)
	}
	h.log.Debug("build requested", "request", string(body))
	return nil
}

// fail counts and logs an object that is not loaded and returns err, which the invocation
// returns (joined with the others) so that its retries and failure destination see it; err
// keeps its classification (retry.IsPermanent).
func (h *Handler) fail(m *counters, key string, attempts int, err error) error {
	reason := Reason(err)
	m.fail(reason)
	h.log.Error("object not loaded", "key", key, "reason", reason, "permanent", retry.IsPermanent(err), "attempts", attempts, "err", err)
	return err
}

func (h *Handler) duplicate(m *counters, key, etag string) error {
	m.inc(&m.Duplicates)
	h.log.Info("duplicate event skipped: object already loaded", "key", key, "etag", etag)
	return nil
}

// Reason is the failure reason err is counted under in Metrics.Failures. It names what went
// wrong; whether to try again is retry.IsPermanent's answer, not the reason's.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrObjectNotFound):
		return ReasonMissingObject
	case errors.Is(err, warehouse.ErrBadObject):
		return ReasonBadObject
	case errors.Is(err, warehouse.ErrUnknownTable):
		return ReasonUnknownTable
	case errors.Is(err, warehouse.ErrNothingLoaded):
		return ReasonNothingLoaded
	case errors.As(err, new(*bronze.KeyError)), errors.As(err, new(url.EscapeError)):
		return ReasonBadKey
	}
	return ReasonWarehouse
}

// objectKey is the URL-decoded key. events.S3Event decoded from JSON has it in URLDecodedKey; an
// event built in code may only have Key.
func objectKey(o events.S3Object) (string, error) {
	if o.URLDecodedKey != "" {
		return o.URLDecodedKey, nil
	}
	return url.QueryUnescape(o.Key)
}

// isObjectCreated accepts AWS's "ObjectCreated:Put" and MinIO's/versitygw's "s3:ObjectCreated:Put"
// (and the other ways an object is created: Post, Copy, CompleteMultipartUpload).
func isObjectCreated(name string) bool {
	return strings.HasPrefix(strings.TrimPrefix(name, "s3:"), "ObjectCreated:")
}
