// Package s3local is the S3 of the one-machine stack: an in-process S3 server (gofakes3) keeping
// objects as plain files on disk, which takes only requests signed with AWS Signature Version 4
// by its one key pair (Verify; the pair is made once in the state directory, EnsureCredentials)
// and tells a callback about every object it stores with the same events.S3Event that Amazon S3
// sends to a Lambda. It also receives the webhook notifications of versitygw, the real S3 server
// used when S3_ENDPOINT points at one.
package s3local

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
)

// DefaultAddr is where the local stack's S3 listens, so that the aws CLI can browse it.
const DefaultAddr = "127.0.0.1:9000"

// Region is the region the local server claims in its events.
const Region = "us-east-1"

// Server is a running local S3 server.
type Server struct {
	// URL is the endpoint to give S3 clients, e.g. http://127.0.0.1:9000.
	URL string

	http   *http.Server
	events chan events.S3Event
	done   chan struct{}
	serve  chan error
	once   sync.Once

	mu     sync.RWMutex // guards closed against emit
	closed bool
}

// Option changes how Start builds the server.
type Option func(*options)

type options struct {
	creds   Credentials
	region  string
	buckets []string
	logger  *slog.Logger
}

// WithCredentials is the one key pair the server accepts (required): every request must carry
// a valid AWS Signature Version 4 made with it (see Verify).
func WithCredentials(c Credentials) Option { return func(o *options) { o.creds = c } }

// WithRegion is the region the server is in (default Region): requests signed for another are
// refused, as S3 refuses them, and its events name it.
func WithRegion(r string) Option { return func(o *options) { o.region = r } }

// WithBuckets creates these buckets at start if they do not exist yet.
func WithBuckets(names ...string) Option {
	return func(o *options) { o.buckets = append(o.buckets, names...) }
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Start serves S3 on addr (host:port; port 0 picks a free one) with objects stored as files
// under dir/buckets/<bucket>/<key>. After each object is stored, onCreated (if not nil) gets
// its ObjectCreated event, one event at a time in the order objects were stored, from a
// goroutine of the server: like S3's own notifications, delivery is asynchronous, so the
// callback should be quick or hand the event on. The server stops when ctx is done or on Close.
func Start(ctx context.Context, addr, dir string, onCreated func(events.S3Event), opts ...Option) (*Server, error) {
	o := options{logger: slog.Default(), region: Region}
	for _, opt := range opts {
		opt(&o)
	}
	if o.creds.AccessKeyID == "" || o.creds.SecretAccessKey == "" {
		return nil, errors.New("s3local: no credentials (WithCredentials): the local S3 accepts only signed requests")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("s3local: create %s: %w", dir, err)
	}
	dropped, checked, err := dropUnstored(dir) // before staging is emptied: it puts back what is kept there
	if err != nil {
		return nil, err
	}
	root, err := newAtomicFs(dir)
	if err != nil {
		return nil, err
	}
	o.logger.Debug("local S3: checked the PUTs a crash may have cut short", "objects", checked)
	for _, k := range dropped {
		o.logger.Warn("local S3: dropped an object a crash left without its metadata (its PUT was never acknowledged)", "object", k)
	}
	files, err := s3afero.MultiBucket(root)
	if err != nil {
		return nil, fmt.Errorf("s3local: open %s: %w", dir, err)
	}
	s := &Server{
		events: make(chan events.S3Event, 256),
		done:   make(chan struct{}),
		serve:  make(chan error, 1),
	}
	backend := &notifying{Backend: files, fs: root, emit: s.emit, region: o.region}
	for _, b := range o.buckets {
		exists, err := files.BucketExists(b)
		if err == nil && !exists {
			err = files.CreateBucket(b)
		}
		if err != nil {
			return nil, fmt.Errorf("s3local: create bucket %s: %w", b, err)
		}
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("s3local: listen on %s: %w", addr, err)
	}
	s.URL = "http://" + ln.Addr().String()
	// gofakes3's own clock check would answer before the signature is verified; Verify does it.
	handler := Verify(o.creds, o.region, time.Now, gofakes3.New(backend, gofakes3.WithTimeSkewLimit(0)).Server())
	s.http = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}

	go s.deliver(onCreated)
	go func() { s.serve <- s.http.Serve(ln) }()
	go func() {
		select {
		case <-ctx.Done():
			_ = s.Close()
		case <-s.done:
		}
	}()
	o.logger.Info("local S3 listening", "url", s.URL, "dir", dir, "region", o.region, "access_key_id", o.creds.AccessKeyID)
	return s, nil
}

// Close stops the server and waits until every event of an object already stored was delivered.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = s.http.Shutdown(ctx)
		if serr := <-s.serve; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		s.mu.Lock()
		s.closed = true
		close(s.events)
		s.mu.Unlock()
		<-s.done
	})
	return err
}

func (s *Server) deliver(onCreated func(events.S3Event)) {
	defer close(s.done)
	for ev := range s.events {
		if onCreated != nil {
			onCreated(ev)
		}
	}
}

func (s *Server) emit(ev events.S3Event) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.closed { // only a request that outlived Shutdown's grace period finds it closed
		s.events <- ev
	}
}

// notifying is a gofakes3 backend that reports every object it stores.
type notifying struct {
	gofakes3.Backend
	fs     *atomicFs
	emit   func(events.S3Event)
	region string
	seq    atomic.Uint64
	// writes orders a PUT, with what it takes back if it fails, and the deletes: a delete or
	// another PUT between a failed PUT and its undoing would be undone with it. Reads (GET, HEAD,
	// listings) take it to read, so that none sees a failed PUT's files between the backend's
	// write and their undoing, which S3 never shows. The file backend runs one call at a time
	// already (its own mutex, the body's read included), so this serializes nothing more than
	// the undoing; a GET holds it only to open the object, not while its body is sent.
	writes sync.RWMutex
}

func (n *notifying) PutObject(bucket, key string, meta map[string]string, input io.Reader,
	size int64, conditions *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	// The marker and its fsyncs come before the lock that orders the writes, and its crossing
	// off after: a marker says only that a PUT of the key may be in progress, which the next
	// start checks, so its order among the PUTs does not matter.
	id, done, err := putStarted(n.fs.root, bucket, key)
	if err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	res, replaced, err := n.put(id, bucket, key, meta, input, size, conditions)
	if !errors.Is(err, errUndoFailed) {
		// The object and its metadata are in place, or what was there before is: nothing for
		// the next start to check. (A PUT whose undoing failed keeps its marker: the next start
		// puts back what it replaced.)
		done(replaced)
	}
	if err == nil {
		n.emit(n.event("ObjectCreated:Put", bucket, key, size, res.sum))
	}
	return res.PutObjectResult, err
}

// errUndoFailed marks a failed PUT that could not take back all it put in place.
var errUndoFailed = errors.New("s3local: the failed PUT could not be taken back")

type putResult struct {
	gofakes3.PutObjectResult
	sum hash.Hash // of the body read, for the event's ETag
}

// put stores the object under the writes lock, taking back what it put in place if it fails,
// and reports whether it replaced files (an overwrite).
func (n *notifying) put(id, bucket, key string, meta map[string]string, input io.Reader,
	size int64, conditions *gofakes3.PutConditions) (putResult, bool, error) {
	n.writes.Lock()
	defer n.writes.Unlock()
	res := putResult{sum: md5.New()}
	// s3afero keeps bucket b's object k in buckets/b/k under its root, its metadata in
	// metadata/b/metaName(k).
	name := filepath.Join("buckets", bucket, filepath.FromSlash(key))
	defer n.fs.takeAborted(name)
	body := abortOnError{Reader: io.TeeReader(input, res.sum), fs: n.fs, name: name}
	p := n.fs.begin(id, name, filepath.Join("metadata", bucket, metaName(key)))
	var err error
	res.PutObjectResult, err = n.Backend.PutObject(bucket, key, meta, body, size, conditions)
	if uerr := n.fs.end(p, err != nil); uerr != nil {
		return res, p.replaced(), errors.Join(err, errUndoFailed, uerr)
	}
	if err != nil {
		// The directories the backend made for the key are left empty: S3 has none, and the
		// backend would list them as common prefixes.
		removeEmptyDirs(filepath.Join(n.fs.root, "buckets", bucket), filepath.Dir(filepath.Join(n.fs.root, name)))
	}
	return res, p.replaced(), err
}

func (n *notifying) GetObject(bucket, key string, rng *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	n.writes.RLock()
	defer n.writes.RUnlock()
	return n.Backend.GetObject(bucket, key, rng)
}

func (n *notifying) HeadObject(bucket, key string) (*gofakes3.Object, error) {
	n.writes.RLock()
	defer n.writes.RUnlock()
	return n.Backend.HeadObject(bucket, key)
}

// removeEmptyDirs removes dir and its parents below top while they are empty.
func removeEmptyDirs(top, dir string) {
	for strings.HasPrefix(dir, top+string(filepath.Separator)) && os.Remove(dir) == nil {
		dir = filepath.Dir(dir)
	}
}

func (n *notifying) DeleteObject(bucket, key string) (gofakes3.ObjectDeleteResult, error) {
	n.writes.Lock()
	defer n.writes.Unlock()
	return n.Backend.DeleteObject(bucket, key)
}

func (n *notifying) DeleteMulti(bucket string, keys ...string) (gofakes3.MultiDeleteResult, error) {
	n.writes.Lock()
	defer n.writes.Unlock()
	return n.Backend.DeleteMulti(bucket, keys...)
}

func (n *notifying) CopyObject(srcBucket, srcKey, dstBucket, dstKey string,
	meta map[string]string) (gofakes3.CopyObjectResult, error) {
	// gofakes3.CopyObject stores through the backend it is given: this one, which reports it.
	return gofakes3.CopyObject(n, srcBucket, srcKey, dstBucket, dstKey, meta)
}

// event builds the notification Amazon S3 would send for this object (event version 2.1).
func (n *notifying) event(name, bucket, key string, size int64, sum hash.Hash) events.S3Event {
	seq := n.seq.Add(1)
	now := time.Now().UTC()
	return events.S3Event{Records: []events.S3EventRecord{{
		EventVersion:      "2.1",
		EventSource:       "aws:s3",
		AWSRegion:         n.region,
		EventTime:         now,
		EventName:         name,
		PrincipalID:       events.S3UserIdentity{PrincipalID: "fin-local"},
		RequestParameters: events.S3RequestParameters{SourceIPAddress: "127.0.0.1"},
		ResponseElements: map[string]string{
			"x-amz-request-id": fmt.Sprintf("%016X", seq),
			"x-amz-id-2":       "fin-local",
		},
		S3: events.S3Entity{
			SchemaVersion:   "1.0",
			ConfigurationID: "fin-local",
			Bucket: events.S3Bucket{
				Name:          bucket,
				OwnerIdentity: events.S3UserIdentity{PrincipalID: "fin-local"},
				Arn:           "arn:aws:s3:::" + bucket,
			},
			Object: events.S3Object{
				Key:           EncodeEventKey(key),
				URLDecodedKey: key,
				Size:          size,
				ETag:          hex.EncodeToString(sum.Sum(nil)),
				Sequencer:     fmt.Sprintf("%016X%08X", now.UnixNano(), seq),
			},
		},
	}}}
}

// EncodeEventKey encodes an object key as S3 does in its event notifications: form-encoded,
// slashes kept (dt=2026-01-01 becomes dt%3D2026-01-01, a space becomes +).
func EncodeEventKey(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.QueryEscape(p)
	}
	return strings.Join(parts, "/")
}
