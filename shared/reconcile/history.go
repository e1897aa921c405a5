package reconcile

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// An earlier pass's versions are kept on disk, one file per table in key order, and read back in
// step with the next passes' walk: holding them in memory would grow with the tables (three
// passes of every key).

// versionsWriter writes a pass's versions of one table: each key as its length and bytes, then
// its version (varints).
type versionsWriter struct {
	f   *os.File
	w   *bufio.Writer
	buf [2 * binary.MaxVarintLen64]byte
}

func createVersions(dir, table string) (*versionsWriter, error) {
	f, err := os.Create(filepath.Join(dir, table))
	if err != nil {
		return nil, fmt.Errorf("reconcile: keep this pass's versions of %s: %w", table, err)
	}
	return &versionsWriter{f: f, w: bufio.NewWriter(f)}, nil
}

func (v *versionsWriter) add(key string, version int64) error {
	n := binary.PutUvarint(v.buf[:], uint64(len(key)))
	v.w.Write(v.buf[:n])
	v.w.WriteString(key)
	n = binary.PutVarint(v.buf[:], version)
	if _, err := v.w.Write(v.buf[:n]); err != nil {
		return fmt.Errorf("reconcile: keep this pass's versions: %w", err)
	}
	return nil
}

func (v *versionsWriter) close() error {
	err := v.w.Flush()
	if cerr := v.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("reconcile: keep this pass's versions: %w", err)
	}
	return nil
}

// versionsFile reads back what a versionsWriter wrote.
type versionsFile struct {
	f    *os.File
	r    *bufio.Reader
	name string
}

// openVersions opens a pass's versions of table; a table the pass did not compare has none.
func openVersions(dir, table string) (versionCursor, func(), error) {
	f, err := os.Open(filepath.Join(dir, table))
	if errors.Is(err, os.ErrNotExist) {
		return emptyVersions{}, func() {}, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reconcile: read an earlier pass's versions of %s: %w", table, err)
	}
	return &versionsFile{f: f, r: bufio.NewReader(f), name: f.Name()}, func() { f.Close() }, nil
}

func (v *versionsFile) next() (string, int64, bool, error) {
	n, err := binary.ReadUvarint(v.r)
	if errors.Is(err, io.EOF) {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, fmt.Errorf("reconcile: read %s: %w", v.name, err)
	}
	key := make([]byte, n)
	if _, err := io.ReadFull(v.r, key); err != nil {
		return "", 0, false, fmt.Errorf("reconcile: read %s: %w", v.name, err)
	}
	version, err := binary.ReadVarint(v.r)
	if err != nil {
		return "", 0, false, fmt.Errorf("reconcile: read %s: %w", v.name, err)
	}
	return string(key), version, true, nil
}

type emptyVersions struct{}

func (emptyVersions) next() (string, int64, bool, error) { return "", 0, false, nil }
