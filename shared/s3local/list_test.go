package s3local

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// TestListingPagesAsS3Does: a listing answers at most max-keys keys after the marker and says
// when more follow, for V1 and V2 alike; 1,001 objects take two requests of the default size.
func TestListingPagesAsS3Does(t *testing.T) {
	dir := t.TempDir()
	creds, err := EnsureCredentials(CredentialsPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Start(t.Context(), "127.0.0.1:0", filepath.Join(dir, "s3"), func(events.S3Event) {}, WithBuckets("lake"), WithCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := minio.New(srv.URL[len("http://"):], &minio.Options{Creds: credentials.NewStaticV4(creds.AccessKeyID, creds.SecretAccessKey, ""), Region: Region})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1001 {
		key := fmt.Sprintf("dlq/k%04d", i)
		if _, err := c.PutObject(context.Background(), "lake", key, bytes.NewReader([]byte("x")), 1, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, v1 := range []bool{true, false} {
		core := minio.Core{Client: c}
		var keys []string
		var truncated bool
		if v1 {
			res, err := core.ListObjects("lake", "dlq/", "dlq/k0997", "", 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range res.Contents {
				keys = append(keys, o.Key)
			}
			truncated = res.IsTruncated
		} else {
			res, err := core.ListObjectsV2("lake", "dlq/", "dlq/k0997", "", "", 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range res.Contents {
				keys = append(keys, o.Key)
			}
			truncated = res.IsTruncated
		}
		if fmt.Sprint(keys) != "[dlq/k0998 dlq/k0999]" || !truncated {
			t.Errorf("V1=%v: 2 keys after dlq/k0997 = %v, truncated %v; want [dlq/k0998 dlq/k0999], truncated", v1, keys, truncated)
		}
	}
	first, err := minio.Core{Client: c}.ListObjectsV2("lake", "", "", "", "", 1000)
	if err != nil || len(first.Contents) != 1000 || !first.IsTruncated || first.NextContinuationToken == "" {
		t.Fatalf("first page of 1,001: %d keys, truncated %v, %v", len(first.Contents), first.IsTruncated, err)
	}
	n := 0
	for o := range c.ListObjects(context.Background(), "lake", minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		n++
	}
	if n != 1001 {
		t.Fatalf("a paging client listed %d of 1,001", n)
	}
}
