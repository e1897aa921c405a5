package loader_test

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/fin-orchestrator/fin-orchestrator/shared/loader"
	"github.com/fin-orchestrator/fin-orchestrator/shared/s3local"
)

// S3Objects lists with ListObjectsV2's Delimiter and StartAfter as S3 answers them (through the
// local S3, which pages as S3 does): what RecentObjects relies on.
func TestS3ObjectsListsPrefixesAndAfterAKey(t *testing.T) {
	dir := t.TempDir()
	creds, err := s3local.EnsureCredentials(s3local.CredentialsPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := s3local.Start(t.Context(), "127.0.0.1:0", filepath.Join(dir, "s3"), func(events.S3Event) {},
		s3local.WithBuckets(bucket), s3local.WithCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	client := s3.New(s3.Options{Region: s3local.Region, BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, "")})
	keys := []string{
		"bronze/accounts/dt=2026-11-24/a-0-1.parquet", "bronze/accounts/dt=2026-11-25/a-0-10.parquet",
		"bronze/accounts/dt=2026-11-25/a-0-100.parquet", "bronze/customers/dt=2026-11-01/c-0-0.parquet", "dlq/x.json",
	}
	for _, k := range keys {
		if _, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader([]byte("x"))}); err != nil {
			t.Fatal(err)
		}
	}
	o := loader.S3Objects{Client: client}
	prefixes, err := o.ListPrefixes(t.Context(), bucket, "bronze/")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"bronze/accounts/", "bronze/customers/"}; !slices.Equal(prefixes, want) {
		t.Errorf("prefixes %v, want %v", prefixes, want)
	}
	var after []string
	err = o.ListObjectsAfter(context.Background(), bucket, "bronze/accounts/", "bronze/accounts/dt=2026-11-24", func(k, _ string) error {
		after = append(after, k)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := keys[:3]; !slices.Equal(after, want) {
		t.Errorf("after dt=2026-11-24: %v, want %v", after, want)
	}
	after = nil
	err = o.ListObjectsAfter(context.Background(), bucket, "bronze/accounts/", "bronze/accounts/dt=2026-11-25/a-0-10.parquet", func(k, _ string) error {
		after = append(after, k)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := keys[2:3]; !slices.Equal(after, want) {
		t.Errorf("after a key: %v, want %v", after, want)
	}
}
