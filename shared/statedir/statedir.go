// Package statedir says where the one-machine stack keeps its state (Kafka log, S3 objects,
// warehouse, tokens, logs): one default for `fin up`, the other `fin` commands and the local
// warehouse, so a command run from a subdirectory finds the stack's files.
package statedir

import (
	"os"
	"path/filepath"
	"strings"
)

// Dir is FIN_STATE_DIR, else .fin at the root of this repository (found by walking up from the
// working directory to its go.mod), else .fin in the working directory outside the repository.
// scripts/lib.sh makes the same choice ($FIN_ROOT/.fin).
func Dir() string {
	if d := os.Getenv("FIN_STATE_DIR"); d != "" {
		return d
	}
	return filepath.Join(repoRoot(), ".fin")
}

const module = "module github.com/fin-orchestrator/fin-orchestrator\n"

func repoRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	for dir := wd; ; {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(b), module) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return wd
		}
		dir = parent
	}
}
