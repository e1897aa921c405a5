// Package runlog keeps the console's records (dbt runs with their detail, loads, landing
// batches) in one file of the state directory, so they outlive `fin up`. Each kind is a bbolt
// bucket keyed by a big-endian sequence number: keys sort in the order records were added, a page
// is a cursor seek to the last key seen (never an offset), and reading the first or the
// 500,000th page costs the same few page reads of the B+tree.
package runlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Kinds of records the console keeps. A run's detail (its nodes and its log, up to a few
// hundred KB) lives apart from its summary under the same key, so a page of runs never reads
// logs.
const (
	Runs       = "runs"
	RunDetails = "run_details"
	Loads      = "loads"
	Batches    = "batches"
)

var kinds = []string{Runs, RunDetails, Loads, Batches}

// Log is the open file. It is safe for concurrent use; bbolt lets one process hold it.
type Log struct {
	db   *bolt.DB
	keep map[string]uint64 // each kind's window (windows)
}

// Open opens (or creates) the file at path. A second process opening it waits up to a second,
// then fails naming the file, as a second `fin up` on one state directory should.
func Open(path string) (*Log, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("run log %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o640, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("run log %s is held by another process (another fin up on this state directory?): %w", path, err)
	} else if err != nil {
		return nil, fmt.Errorf("run log %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, k := range kinds {
			if _, err := tx.CreateBucketIfNotExists([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("run log %s: %w", path, err)
	}
	return &Log{db: db, keep: maps.Clone(windows)}, nil
}

// Close closes the file.
func (l *Log) Close() error { return l.db.Close() }

// Entry is one record: its key and the JSON it was added with.
type Entry struct {
	Key   uint64
	Value []byte
}

// Add appends each value under a new key of kind, in one transaction (one fsync), and returns
// the keys. With detail, detail[i] goes under keys[i] in RunDetails.
func (l *Log) Add(kind string, values [][]byte, detail [][]byte) ([]uint64, error) {
	keys := make([]uint64, len(values))
	err := l.db.Update(func(tx *bolt.Tx) error {
		b, err := bucket(tx, kind)
		if err != nil {
			return err
		}
		// Keys only ever grow: full pages, rather than bbolt's half-full default, halve the file.
		b.FillPercent = 1
		for i, v := range values {
			if keys[i], err = b.NextSequence(); err != nil {
				return err
			}
			if err := putKeeping(b, keys[i], v, l.keep[kind]); err != nil {
				return err
			}
			if i < len(detail) && detail[i] != nil {
				if err := l.putDetail(tx, keys[i], detail[i]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("run log: add %d %s: %w", len(values), kind, err)
	}
	return keys, nil
}

// KeepDetails is how many runs keep their detail (nodes and log): a year of minute-by-minute
// runs keeps every summary (about 300 bytes each) but only the last two weeks of details, so the
// file stays near 400 MB (measured by BenchmarkConsoleRuns) rather than tens of GB.
const KeepDetails = 20_000

// KeepLoads is how many loads, and landing batches, are kept: they follow the data (a few objects
// a second under steady activity), so without a window the file would grow by gigabytes a year.
// A million is days to months of them, about 300 MB each.
const KeepLoads = 1_000_000

// windows are each kind's window; runs' summaries are kept for good.
var windows = map[string]uint64{Loads: KeepLoads, Batches: KeepLoads, RunDetails: KeepDetails}

// putDetail stores a run's detail in the window of KeepDetails.
func (l *Log) putDetail(tx *bolt.Tx, key uint64, detail []byte) error {
	b := tx.Bucket([]byte(RunDetails))
	b.FillPercent = 1
	return putKeeping(b, key, detail, l.keep[RunDetails])
}

// putKeeping puts value under key and, with a window, drops the record window keys older: one
// delete per add keeps the window without a sweep (keys are consecutive).
func putKeeping(b *bolt.Bucket, key uint64, value []byte, window uint64) error {
	if window > 0 && key > window {
		if err := b.Delete(encode(key - window)); err != nil {
			return err
		}
	}
	return b.Put(encode(key), value)
}

// Page returns up to limit records of kind, newest first, all older than before (0: from the
// newest). The next page is Page(kind, last key returned, limit); an empty page is the end.
func (l *Log) Page(kind string, before uint64, limit int) ([]Entry, error) {
	var out []Entry
	err := l.db.View(func(tx *bolt.Tx) error {
		b, err := bucket(tx, kind)
		if err != nil {
			return err
		}
		c := b.Cursor()
		var k, v []byte
		if before == 0 {
			k, v = c.Last()
		} else if k, v = c.Seek(encode(before)); k == nil {
			k, v = c.Last() // every key is older than before
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && len(out) < limit; k, v = c.Prev() {
			out = append(out, Entry{Key: binary.BigEndian.Uint64(k), Value: append([]byte(nil), v...)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("run log: page of %s before %d: %w", kind, before, err)
	}
	return out, nil
}

// ErrNotFound is Get's error for a key the kind does not hold.
var ErrNotFound = errors.New("no such record")

// Get returns the record of kind under key.
func (l *Log) Get(kind string, key uint64) ([]byte, error) {
	var out []byte
	err := l.db.View(func(tx *bolt.Tx) error {
		b, err := bucket(tx, kind)
		if err != nil {
			return err
		}
		v := b.Get(encode(key))
		if v == nil {
			return ErrNotFound
		}
		out = append([]byte(nil), v...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("run log: %s %d: %w", kind, key, err)
	}
	return out, nil
}

// Count is how many records of kind were ever added, those dropped out of a window included: the
// bucket's sequence, so it costs nothing however many there are.
func (l *Log) Count(kind string) (uint64, error) {
	var n uint64
	err := l.db.View(func(tx *bolt.Tx) error {
		b, err := bucket(tx, kind)
		if err == nil {
			n = b.Sequence()
		}
		return err
	})
	return n, err
}

// ParseKey reads a key as the API writes it (decimal); "" is 0, the newest end.
func ParseKey(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	k, err := strconv.ParseUint(s, 10, 64)
	if err != nil || k == 0 {
		return 0, fmt.Errorf("key %q: want a positive decimal number (a key from an earlier page)", s)
	}
	return k, nil
}

func bucket(tx *bolt.Tx, kind string) (*bolt.Bucket, error) {
	b := tx.Bucket([]byte(kind))
	if b == nil {
		return nil, fmt.Errorf("unknown kind %q", kind)
	}
	return b, nil
}

func encode(k uint64) []byte { return binary.BigEndian.AppendUint64(nil, k) }
