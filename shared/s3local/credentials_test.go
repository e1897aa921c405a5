package s3local_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/fin-orchestrator/fin-orchestrator/shared/s3local"
)

// TestCredentialsFile: made once with mode 0600, in the AWS shared credentials format the SDK
// reads as it is, the same for processes that start together; a file too open or corrupt is
// refused with its path and the fix.
func TestCredentialsFile(t *testing.T) {
	path := s3local.CredentialsPath(filepath.Join(t.TempDir(), "state"))
	var wg sync.WaitGroup
	got := make([]s3local.Credentials, 4)
	for i := range got {
		wg.Go(func() {
			var err error
			if got[i], err = s3local.EnsureCredentials(path); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, c := range got[1:] {
		if c != got[0] || c.AccessKeyID == "" || c.SecretAccessKey == "" {
			t.Fatalf("concurrent starts got %+v and %+v; want the same credentials", got[0].AccessKeyID, c.AccessKeyID)
		}
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v, %v; want mode 0600", info.Mode(), err)
	}
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithSharedCredentialsFiles([]string{path}),
		config.WithSharedConfigFiles(nil), config.WithSharedConfigProfile(s3local.Profile), config.WithRegion(s3local.Region))
	if err != nil {
		t.Fatal(err)
	}
	sdk, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil || sdk.AccessKeyID != got[0].AccessKeyID || sdk.SecretAccessKey != got[0].SecretAccessKey {
		t.Fatalf("the SDK reads key %q (%v) from the file; want %q and its secret", sdk.AccessKeyID, err, got[0].AccessKeyID)
	}
	if again, err := s3local.EnsureCredentials(path); err != nil || again != got[0] {
		t.Fatalf("second start: %v; want the same credentials", err)
	}
	good, _ := os.ReadFile(path)
	for _, tc := range []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
	}{
		{"readable by others", string(good), 0o644, "chmod 600"},
		{"empty (a crash while writing)", "", 0o600, "corrupt"},
		{"cut short", string(good[:len(good)-10]), 0o600, "corrupt"},
		{"another profile", strings.Replace(string(good), "["+s3local.Profile+"]", "[default]", 1), 0o600, "corrupt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "s3-credentials")
			if err := os.WriteFile(p, []byte(tc.content), tc.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(p, tc.mode)
			_, err := s3local.EnsureCredentials(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("err = %v; want one naming %s and saying %q", err, p, tc.want)
			}
			if b, _ := os.ReadFile(p); string(b) != tc.content {
				t.Error("the refused file was changed")
			}
		})
	}
}
