// Package secretfile reads the local stack's secret files (the development signing secret, the
// local S3 credentials, the console token), refusing one its group or others may read: a secret
// anyone on the machine can read is no secret, and each caller would otherwise repeat the check.
package secretfile

import (
	"fmt"
	"os"
)

// Read returns the bytes of the file at path, what naming it in errors ("sql token"). A missing
// file's error satisfies errors.Is(err, os.ErrNotExist), so callers can make one.
func Read(path, what string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s %s is readable by others (mode %v): run chmod 600 %[2]s", what, path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", what, path, err)
	}
	return b, nil
}
