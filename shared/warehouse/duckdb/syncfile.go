package duckdb

import (
	"bytes"
	"errors"
	"hash/maphash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// syncBlock is the unit a fileSync compares and rewrites: DuckDB's block size.
const syncBlock = 256 << 10

// fileSync keeps a copy of a file byte for byte equal to it, updated in place (Snapshot's copy
// of RAW). It remembers a checksum of each block of the copy as its last sync left it, so the
// next sync reads the source only: a block whose checksum is unchanged is neither read from the
// copy nor written. The checksums live in memory, so a new process (a restart), a sync that
// failed, another copy, or a copy that something else changed since (its inode, size or
// modification time differ from what the last sync left) compares the copy whole, which also
// repairs a copy torn by a crash. Not safe for concurrent use (Snapshot holds the warehouse).
type fileSync struct {
	seed maphash.Seed
	dst  string
	left fs.FileInfo // dst as the last sync left it
	sums []uint64    // a checksum of each block of dst as the last sync left it; nil: unknown
}

func newFileSync() *fileSync { return &fileSync{seed: maphash.MakeSeed()} }

// sync makes dst equal to src and returns src's size and the bytes written. A dst that does not
// exist is copied whole through a temporary file, so a reader never sees half of a first copy.
func (s *fileSync) sync(src, dst string) (size, written int64, err error) {
	sums := s.known(dst)
	s.sums = nil // unknown until this sync has succeeded
	in, err := os.Open(src)
	if err != nil {
		return 0, 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		var next []uint64
		if size, next, err = s.copyFile(in, dst); err == nil {
			err = s.remember(dst, next)
		}
		return size, size, err
	}
	if err != nil {
		return 0, 0, err
	}
	defer out.Close()
	a, b := make([]byte, syncBlock), make([]byte, syncBlock)
	var next []uint64
	for i := 0; ; i++ {
		n, rerr := io.ReadFull(in, a)
		if n > 0 {
			sum := maphash.Bytes(s.seed, a[:n])
			next = append(next, sum)
			var same bool
			if sums != nil {
				// The checksum covers the block's length too: a last block that grew or was cut
				// differs.
				same = i < len(sums) && sums[i] == sum
			} else {
				m, _ := out.ReadAt(b[:n], size) // short where dst ends before src
				same = m == n && bytes.Equal(a[:n], b[:n])
			}
			if !same {
				if _, err := out.WriteAt(a[:n], size); err != nil {
					return size, written, err
				}
				written += int64(n)
			}
			size += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return size, written, rerr
		}
	}
	if err := out.Truncate(size); err != nil {
		return size, written, err
	}
	if err := out.Close(); err != nil {
		return size, written, err
	}
	return size, written, s.remember(dst, next)
}

// known returns the checksums of dst's blocks if the last sync left dst as it still is, else nil.
func (s *fileSync) known(dst string) []uint64 {
	if s.sums == nil || s.dst != dst {
		return nil
	}
	fi, err := os.Stat(dst)
	if err != nil || !os.SameFile(fi, s.left) || fi.Size() != s.left.Size() || !fi.ModTime().Equal(s.left.ModTime()) {
		return nil
	}
	return s.sums
}

// remember records dst as this sync left it, with the checksums of its blocks.
func (s *fileSync) remember(dst string, sums []uint64) error {
	fi, err := os.Stat(dst)
	if err != nil {
		return err
	}
	if sums == nil {
		sums = []uint64{} // an empty file is known too
	}
	s.dst, s.left, s.sums = dst, fi, sums
	return nil
}

// copyFile copies in to dst through a temporary file, so a reader never sees half a copy, and
// returns the checksums of its blocks.
func (s *fileSync) copyFile(in io.Reader, dst string) (int64, []uint64, error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return 0, nil, err
	}
	// A copy cut short by a crash left its temporary file.
	stale, _ := filepath.Glob(dst + ".*.tmp")
	for _, f := range stale {
		os.Remove(f)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), filepath.Base(dst)+".*.tmp")
	if err != nil {
		return 0, nil, err
	}
	defer os.Remove(tmp.Name())
	var sums []uint64
	var size int64
	buf := make([]byte, syncBlock)
	for err == nil {
		var n int
		n, err = io.ReadFull(in, buf)
		if n > 0 {
			sums = append(sums, maphash.Bytes(s.seed, buf[:n]))
			if _, werr := tmp.Write(buf[:n]); werr != nil {
				err = werr
			}
			size += int64(n)
		}
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return size, nil, err
	}
	return size, sums, os.Rename(tmp.Name(), dst)
}
