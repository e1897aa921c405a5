package lambdalocal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLogFileMovesAsideAtItsLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "console.log")
	c, err := OpenLogFile(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"build 1\n", "build 2\n", "build 3\n"} {
		if _, err := c.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{path: "build 3\n", path + ".1": "build 2\n"} {
		got, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s holds %q, want %q", file, got, want)
		}
	}
	// A new stack appends to what the last one left.
	c, err = OpenLogFile(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("build 4\n"))
	c.Close()
	if got, _ := os.ReadFile(path); !strings.HasSuffix(string(got), "build 3\nbuild 4\n") {
		t.Errorf("after a restart %s holds %q", path, got)
	}
	if _, err := c.Write([]byte("late\n")); err == nil {
		t.Error("a write after Close succeeded")
	}
}
