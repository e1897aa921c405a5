package s3local

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/fin-orchestrator/fin-orchestrator/shared/secretfile"
)

// Profile is the profile the credentials file names, for `aws --profile fin-local`.
const Profile = "fin-local"

// CredentialsPath is the local S3's credentials file in the stack's state directory.
func CredentialsPath(stateDir string) string { return filepath.Join(stateDir, "s3-credentials") }

// The shapes of what EnsureCredentials writes: an access key id like AWS's (20 upper-case
// letters and digits) and a 40-character secret.
var (
	accessKeyRE = regexp.MustCompile(`^FIN[A-Z2-7]{17}$`)
	secretRE    = regexp.MustCompile(`^[A-Za-z0-9+/]{40}$`)
)

// EnsureCredentials returns the local S3's credentials kept at path, first writing new random ones
// (mode 0600) in the AWS shared credentials file format under the profile fin-local, so the aws
// CLI and SDKs read the file as it is (AWS_SHARED_CREDENTIALS_FILE). A file that is too open or
// corrupt is an error naming the file and the fix, never silently replaced: running clients may
// hold the keys.
func EnsureCredentials(path string) (Credentials, error) {
	c, err := ReadCredentials(path)
	if !errors.Is(err, os.ErrNotExist) {
		return c, err
	}
	key, secret := make([]byte, 11), make([]byte, 30)
	if _, err := rand.Read(key); err != nil {
		return c, fmt.Errorf("make local S3 credentials: %w", err)
	}
	if _, err := rand.Read(secret); err != nil {
		return c, fmt.Errorf("make local S3 credentials: %w", err)
	}
	c = Credentials{AccessKeyID: "FIN" + base32.StdEncoding.EncodeToString(key)[:17],
		SecretAccessKey: base64.StdEncoding.EncodeToString(secret)}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return c, fmt.Errorf("write local S3 credentials %s: %w", path, err)
	}
	// Written whole to a temporary file, then linked into place: a reader never sees a partial
	// file, and of two processes starting at once one links and the other reads what it linked.
	f, err := os.CreateTemp(filepath.Dir(path), ".s3-credentials-*")
	if err != nil {
		return c, fmt.Errorf("write local S3 credentials %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	_, werr := fmt.Fprintf(f, "# The local S3's credentials (fin made them; keep this file mode 0600).\n"+
		"# aws CLI: AWS_SHARED_CREDENTIALS_FILE=%s aws --profile %s --endpoint-url <fin status's S3 URL> s3 ls\n"+
		"[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n", path, Profile, Profile, c.AccessKeyID, c.SecretAccessKey)
	if err := errors.Join(werr, f.Chmod(0o600), f.Sync(), f.Close()); err != nil {
		return c, fmt.Errorf("write local S3 credentials %s: %w", path, err)
	}
	if err := os.Link(f.Name(), path); errors.Is(err, os.ErrExist) {
		return ReadCredentials(path)
	} else if err != nil {
		return c, fmt.Errorf("write local S3 credentials %s: %w", path, err)
	}
	return c, nil
}

// ReadCredentials reads the credentials file at path, refusing one that others may read or that
// does not hold the fin-local profile's two keys in the shapes EnsureCredentials writes.
func ReadCredentials(path string) (Credentials, error) {
	var c Credentials
	b, err := secretfile.Read(path, "local S3 credentials")
	if err != nil {
		return c, err
	}
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = strings.TrimSpace(line[1 : len(line)-1])
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section != Profile {
			continue
		}
		switch strings.TrimSpace(k) {
		case "aws_access_key_id":
			c.AccessKeyID = strings.TrimSpace(v)
		case "aws_secret_access_key":
			c.SecretAccessKey = strings.TrimSpace(v)
		}
	}
	if !accessKeyRE.MatchString(c.AccessKeyID) || !secretRE.MatchString(c.SecretAccessKey) {
		return Credentials{}, fmt.Errorf("local S3 credentials %s are corrupt (no [%s] profile with an aws_access_key_id and a 40-character aws_secret_access_key): remove the file and start fin again to make new ones", path, Profile)
	}
	return c, nil
}
