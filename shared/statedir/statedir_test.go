package statedir_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fin-orchestrator/fin-orchestrator/shared/statedir"
)

// Not parallel: the cases change the working directory and the environment.
func TestDir(t *testing.T) {
	repo := t.TempDir()
	if err := os.WriteFile(filepath.Join(repo, "go.mod"), []byte("module github.com/fin-orchestrator/fin-orchestrator\n\ngo 1.27\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(repo, "shared", "x")
	outside := t.TempDir()
	if err := os.MkdirAll(sub, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, wd, env, want string
	}{
		{"repository root", repo, "", filepath.Join(repo, ".fin")},
		{"subdirectory of the repository", sub, "", filepath.Join(repo, ".fin")},
		{"outside any repository", outside, "", filepath.Join(outside, ".fin")},
		{"FIN_STATE_DIR wins", sub, "/tmp/elsewhere", "/tmp/elsewhere"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Chdir(tc.wd)
			t.Setenv("FIN_STATE_DIR", tc.env)
			got, _ := filepath.EvalSymlinks(filepath.Dir(statedir.Dir()))
			want, _ := filepath.EvalSymlinks(filepath.Dir(tc.want))
			if got != want || filepath.Base(statedir.Dir()) != filepath.Base(tc.want) {
				t.Errorf("Dir() = %s, want %s", statedir.Dir(), tc.want)
			}
		})
	}
}
