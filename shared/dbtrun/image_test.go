package dbtrun

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pins reads name==version lines of a requirements file.
func pins(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if name, version, ok := strings.Cut(strings.TrimSpace(line), "=="); ok && !strings.HasPrefix(name, "#") {
			out[name] = version
		}
	}
	return out
}

// The runner image must run the dbt that make test tested.
func TestRunnerImagePinsMatchVenv(t *testing.T) {
	root := repoRoot(t)
	venv := pins(t, filepath.Join(root, "requirements.txt"))
	image := pins(t, filepath.Join(root, "functions", "dbt-runner", "requirements.txt"))
	if len(image) == 0 {
		t.Fatal("functions/dbt-runner/requirements.txt pins nothing")
	}
	for name, version := range image {
		if venv[name] != version {
			t.Errorf("functions/dbt-runner/requirements.txt pins %s==%s, requirements.txt %s==%q: keep them equal", name, version, name, venv[name])
		}
	}
}
