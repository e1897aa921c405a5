package objectstore_test

import (
	"bytes"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/fin-orchestrator/fin-orchestrator/shared/objectstore"
	"github.com/fin-orchestrator/fin-orchestrator/shared/s3local"
)

func TestObjectsReadWrite(t *testing.T) {
	srv, err := s3local.Start(t.Context(), "127.0.0.1:0", t.TempDir(), func(events.S3Event) {}, s3local.WithBuckets("lake"),
		s3local.WithCredentials(s3local.Credentials{AccessKeyID: "local", SecretAccessKey: "local"}))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	client, err := objectstore.Open(objectstore.Config{Endpoint: srv.URL, AccessKey: "local", SecretKey: "local"})
	if err != nil {
		t.Fatal(err)
	}
	o := objectstore.Objects{Client: client, Bucket: "lake"}
	key := "_manifest/capture/fin.json"
	if got, err := o.Read(t.Context(), key); err != nil || got != nil {
		t.Fatalf("missing object: %q, %v; want nil, nil", got, err)
	}
	for _, body := range [][]byte{[]byte(`{"a":1}`), []byte(`{"a":2,"b":[]}`)} {
		if err := o.Write(t.Context(), key, body); err != nil {
			t.Fatal(err)
		}
		if got, err := o.Read(t.Context(), key); err != nil || !bytes.Equal(got, body) {
			t.Fatalf("read back %q, %v; want %q", got, err, body)
		}
	}
	if _, err := (objectstore.Objects{Client: client, Bucket: "nobucket"}).Read(t.Context(), key); err == nil {
		t.Errorf("a missing bucket read as an empty destination; want an error")
	}
}
