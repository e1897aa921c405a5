package s3local_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/minio/minio-go/v7"

	"github.com/fin-orchestrator/fin-orchestrator/shared/objectstore"
	"github.com/fin-orchestrator/fin-orchestrator/shared/s3local"
)

func TestPutEmitsObjectCreatedEvent(t *testing.T) {
	dir := t.TempDir()
	got := make(chan events.S3Event, 10)
	srv, err := s3local.Start(t.Context(), "127.0.0.1:0", dir, func(ev events.S3Event) { got <- ev },
		s3local.WithBuckets("lake"), s3local.WithCredentials(testCreds))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	client, err := objectstore.Open(objectstore.Config{Endpoint: srv.URL, AccessKey: testCreds.AccessKeyID, SecretKey: testCreds.SecretAccessKey})
	if err != nil {
		t.Fatal(err)
	}
	key := "bronze/accounts/dt=2026-11-25/a b.parquet"
	body := []byte("PAR1 not really")
	if _, err := client.PutObject(t.Context(), "lake", key, bytes.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{}); err != nil {
		t.Fatalf("put: %v", err)
	}

	var ev events.S3Event
	select {
	case ev = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no ObjectCreated event within 5s of the put")
	}
	// The loader gets it as a Lambda would: through JSON.
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var decoded events.S3Event
	if err := json.Unmarshal(raw, &decoded); err != nil {
		t.Fatal(err)
	}
	if len(decoded.Records) != 1 {
		t.Fatalf("event has %d records, want 1: %s", len(decoded.Records), raw)
	}
	r := decoded.Records[0]
	sum := md5.Sum(body)
	for _, c := range []struct{ field, got, want string }{
		{"eventSource", r.EventSource, "aws:s3"},
		{"eventName", r.EventName, "ObjectCreated:Put"},
		{"eventVersion", r.EventVersion, "2.1"},
		{"bucket", r.S3.Bucket.Name, "lake"},
		{"bucket arn", r.S3.Bucket.Arn, "arn:aws:s3:::lake"},
		{"key (URL-encoded as S3 does)", r.S3.Object.Key, "bronze/accounts/dt%3D2026-11-25/a+b.parquet"},
		{"key decoded", r.S3.Object.URLDecodedKey, key},
		{"eTag", r.S3.Object.ETag, hex.EncodeToString(sum[:])},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if r.S3.Object.Size != int64(len(body)) || r.EventTime.IsZero() || r.S3.Object.Sequencer == "" {
		t.Errorf("size %d, time %v, sequencer %q; want %d, a time, a sequencer", r.S3.Object.Size,
			r.EventTime, r.S3.Object.Sequencer, len(body))
	}
	onDisk, err := os.ReadFile(filepath.Join(dir, "buckets", "lake", key))
	if err != nil || !bytes.Equal(onDisk, body) {
		t.Errorf("file on disk: %q, %v; want the object's bytes under dir/buckets/lake/", onDisk, err)
	}
}

func TestWebhookForwardsObjectCreatedOnly(t *testing.T) {
	var got []events.S3Event
	h := s3local.WebhookHandler("tok", func(ev events.S3Event) { got = append(got, ev) }, nil)
	post := func(auth, body string) int {
		t.Helper()
		target := "/s3-events"
		if q, ok := strings.CutPrefix(auth, "?"); ok {
			target, auth = target+"?"+q, ""
		}
		req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
		if user, ok := strings.CutPrefix(auth, "userinfo "); ok { // as Go's client sends a URL's user info
			u, p, _ := strings.Cut(user, ":")
			req.SetBasicAuth(u, p)
		} else if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	created := `{"Records":[{"eventVersion":"2.2","eventSource":"aws:s3","eventName":"s3:ObjectCreated:Put",` +
		`"s3":{"bucket":{"name":"lake"},"object":{"key":"bronze/accounts/dt%3D2026-11-25/x.parquet","size":3}}},` +
		`{"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"lake"},"object":{"key":"y"}}}]}`
	for _, tc := range []struct {
		name, auth, body string
		status           int
	}{
		{"no token", "", created, http.StatusUnauthorized},
		{"wrong token", "Bearer nope", created, http.StatusUnauthorized},
		{"wrong token in the URL's user info", "userinfo fin:nope", created, http.StatusUnauthorized},
		{"right token in the query string", "?token=tok", created, http.StatusUnauthorized},
		{"test event", "Bearer tok", `{"Service":"versitygw","Event":"s3:TestEvent","Records":[]}`, http.StatusNoContent},
		{"not JSON", "Bearer tok", "<xml/>", http.StatusBadRequest},
		{"created and removed", "Bearer tok", created, http.StatusNoContent},
		{"token in the URL's user info", "userinfo fin:tok", created, http.StatusNoContent},
		{"versitygw's empty restore time", "userinfo fin:tok", strings.Replace(created, `"s3":`,
			`"glacierEventData":{"restoreEventData":{"lifecycleRestorationExpiryTime":"","lifecycleRestoreStorageClass":""}},"s3":`, 1),
			http.StatusNoContent},
	} {
		if code := post(tc.auth, tc.body); code != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, code, tc.status)
		}
	}
	if len(got) != 3 || len(got[0].Records) != 1 || len(got[1].Records) != 1 || len(got[2].Records) != 1 {
		t.Fatalf("forwarded %+v; want three events (three authorised posts), each with the one ObjectCreated record", got)
	}
	if k := got[0].Records[0].S3.Object.URLDecodedKey; k != "bronze/accounts/dt=2026-11-25/x.parquet" {
		t.Errorf("decoded key = %q", k)
	}
}
