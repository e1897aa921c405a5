package stack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"

	"github.com/fin-orchestrator/fin-orchestrator/shared/loader"
	"github.com/fin-orchestrator/fin-orchestrator/shared/s3local"
)

// TestFunctionsSignWithTheLocalS3Key: the landing and the loader reach the local S3 with the key
// pair of the state directory, passed as Lambda passes a role's (AWS_ACCESS_KEY_ID, ...), even
// when the user's shell holds other AWS credentials and region; a stack holding another key is
// refused, so the check can fail. The status names the file and the key id, never the secret.
func TestFunctionsSignWithTheLocalS3Key(t *testing.T) {
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "AKIAUSERSOWNKEY00000", "AWS_SECRET_ACCESS_KEY": "users-own-secret",
		"AWS_SESSION_TOKEN": "users-own-token", "AWS_REGION": "eu-west-1", "S3_ENDPOINT": "http://127.0.0.1:1"} {
		t.Setenv(k, v)
	}
	s := testStack(t, Config{Bucket: "lake"})
	srv, creds := localS3(t, s)
	s.S3URL = srv.URL
	for _, tc := range []struct {
		name   string
		creds  s3local.Credentials
		wantOK bool
	}{
		{"the state directory's key", creds, true},
		{"another key", s3local.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: strings.Repeat("x", 40)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.s3Creds = tc.creds
			land, err := s.landingS3()
			if err != nil {
				t.Fatal(err)
			}
			_, err = land.PutObject(context.Background(), "lake", "bronze/x.parquet", bytes.NewReader([]byte("PAR1")), 4, minio.PutObjectOptions{})
			if (err == nil) != tc.wantOK {
				t.Fatalf("landing's put: %v, want ok=%v", err, tc.wantOK)
			}
			o, err := s.loaderS3().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("lake"), Key: aws.String("bronze/x.parquet")})
			if (err == nil) != tc.wantOK {
				t.Fatalf("loader's get: %v, want ok=%v", err, tc.wantOK)
			}
			if err == nil {
				b, _ := io.ReadAll(o.Body)
				o.Body.Close()
				if string(b) != "PAR1" {
					t.Errorf("loader read %q", b)
				}
			}
		})
	}
	s.s3Creds = creds
	d := s.s3Component().Detail
	if !strings.Contains(d, s3local.CredentialsPath(s.cfg.StateDir)) || !strings.Contains(d, creds.AccessKeyID) || strings.Contains(d, creds.SecretAccessKey) {
		t.Errorf("status %q: want the credentials file and the key id, never the secret", d)
	}
}

// localS3 starts the local S3 with bucket "lake" and the key pair of s's state directory; it
// stops with the test.
func localS3(t *testing.T, s *Stack) (*s3local.Server, s3local.Credentials) {
	t.Helper()
	creds, err := s3local.EnsureCredentials(s3local.CredentialsPath(s.cfg.StateDir))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := s3local.Start(t.Context(), "127.0.0.1:0", filepath.Join(s.cfg.StateDir, "s3"), func(events.S3Event) {},
		s3local.WithBuckets("lake"), s3local.WithCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, creds
}

// TestRefusesAnOpenCredentialsFile: fin up stops on a local S3 credentials file others may read,
// naming it and the fix, before anything serves.
func TestRefusesAnOpenCredentialsFile(t *testing.T) {
	s := testStack(t, Config{Bucket: "lake", S3Addr: "127.0.0.1:0"})
	path := s3local.CredentialsPath(s.cfg.StateDir)
	if _, err := s3local.EnsureCredentials(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	err := s.startStorage(t.Context())
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("startStorage: %v; want the file and the fix", err)
	}
}

// TestCatchUpListsPastAThousand: the local S3 answers 1,000 keys a page, as S3 does, and the
// loader's catch-up listing (ListObjectsV2 with continuation tokens) still sees every object.
func TestCatchUpListsPastAThousand(t *testing.T) {
	s := testStack(t, Config{Bucket: "lake"})
	srv, creds := localS3(t, s)
	s.S3URL, s.s3Creds = srv.URL, creds
	land, err := s.landingS3()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1001 {
		if _, err := land.PutObject(t.Context(), "lake", fmt.Sprintf("bronze/x/%04d.parquet", i), strings.NewReader("PAR1"), 4, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	first, err := s.loaderS3().ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String("lake")})
	if err != nil || len(first.Contents) != 1000 || !aws.ToBool(first.IsTruncated) {
		t.Fatalf("first page: %d keys, truncated %v, %v; want 1,000 and truncated", len(first.Contents), aws.ToBool(first.IsTruncated), err)
	}
	seen := map[string]bool{}
	err = loader.S3Objects{Client: s.loaderS3()}.ListObjects(t.Context(), "lake", "bronze/", func(key, _ string) error {
		seen[key] = true
		return nil
	})
	if err != nil || len(seen) != 1001 {
		t.Fatalf("the catch-up listed %d distinct keys of 1,001: %v", len(seen), err)
	}
}
