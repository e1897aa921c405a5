package secretfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		mode    os.FileMode // 0: no file
		wantErr string
		missing bool
	}{
		{name: "owner only", mode: 0o600},
		{name: "owner read only", mode: 0o400},
		{name: "group readable", mode: 0o640, wantErr: "test secret " + filepath.Join(dir, "group readable") + " is readable by others (mode -rw-r-----): run chmod 600"},
		{name: "world readable", mode: 0o604, wantErr: "is readable by others (mode -rw----r--)"},
		{name: "missing", missing: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name)
			if !tt.missing {
				if err := os.WriteFile(path, []byte("s3cret\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			b, err := Read(path, "test secret")
			switch {
			case tt.missing:
				if !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("err = %v, want one that is os.ErrNotExist", err)
				}
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case string(b) != "s3cret\n":
				t.Fatalf("read %q", b)
			}
		})
	}
}
