package lambdalocal

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// LogFile keeps locally what a deployed function writes to CloudWatch (dbt's console output,
// the functions' Embedded Metric Format lines): appended across runs and moved aside to path.1
// whenever it would pass limit bytes, so the two files hold at most 2 x limit.
type LogFile struct {
	mu    sync.Mutex
	path  string
	limit int64
	f     *os.File
	size  int64
}

// OpenLogFile appends to path, moving it aside to path.1 whenever it would pass limit bytes.
func OpenLogFile(path string, limit int64) (*LogFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("log file %s: %w", path, err)
	}
	c := &LogFile{path: path, limit: limit}
	if err := c.open(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *LogFile) open() error {
	f, err := os.OpenFile(c.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("log file %s: %w", c.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("log file %s: %w", c.path, err)
	}
	c.f, c.size = f, st.Size()
	return nil
}

func (c *LogFile) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return 0, os.ErrClosed
	}
	if c.size > 0 && c.size+int64(len(p)) > c.limit {
		c.f.Close()
		c.f = nil
		if err := os.Rename(c.path, c.path+".1"); err != nil {
			return 0, fmt.Errorf("log file %s: %w", c.path, err)
		}
		if err := c.open(); err != nil {
			return 0, err
		}
	}
	n, err := c.f.Write(p)
	c.size += int64(n)
	return n, err
}

func (c *LogFile) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f = nil
	return err
}
