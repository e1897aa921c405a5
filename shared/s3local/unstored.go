package s3local

import (
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// An object a crash left without its metadata must go before the server starts. gofakes3's file
// backend renames an object into place, then writes its metadata, and only then answers the PUT
// (and the server announces it); kill -9 in between leaves an object that no PUT acknowledged and
// no event announced, as if the PUT had failed, which S3 allows. Kept, it broke every listing of
// its prefix for good: s3afero v1.2.0's loadMeta, finding no metadata, hashes the missing
// metadata file instead of the object and fails, so ListObjectsV2 answered 500 InternalError and
// the loader's catch-up never saw the lake again (66-lost-lake.sh: the objects landed before the
// kill and not yet loaded stayed out of the warehouse, reported lost).
//
// Only a PUT in progress at the crash can leave one, so each PUT is written down before it
// starts (a marker in root+".pending", durable before the object is) and crossed off once it
// ended, stored or failed with what it replaced put back (atomicFs.end): the start checks the
// PUTs the markers name, a cost that follows what the crash can leave, not the lake. A root
// without the pending directory (a lake from before the markers) is walked once in full.

// pendingDir is where the markers of root's PUTs in progress are: beside root, on the same file
// system and outside every bucket.
func pendingDir(root string) string { return filepath.Clean(root) + ".pending" }

// putStarted writes down that the PUT of bucket/key is starting, durably, and returns the
// marker's name (the PUT's id, which names the files it replaces while it runs: keptPath) and
// what crosses it off: call it once the PUT ended with its object and metadata in place, or with
// what was there before (a PUT whose undoing failed keeps its marker, for the next start).
//
// A start puts back the files that a PUT whose marker it finds had replaced: the PUT was never
// answered. So crossing off the marker of a PUT that replaced files (replaced) is made durable
// before the PUT is answered; one that replaced nothing leaves the start nothing to undo, only
// an object to check, and needs no fsync.
func putStarted(root, bucket, key string) (id string, done func(replaced bool), err error) {
	dir := pendingDir(root)
	f, err := os.CreateTemp(dir, "put-*")
	if err != nil {
		return "", nil, fmt.Errorf("s3local: mark the PUT of %s/%s: %w", bucket, key, err)
	}
	_, err = f.WriteString(bucket + "\n" + key)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", nil, fmt.Errorf("s3local: mark the PUT of %s/%s: %w", bucket, key, err)
	}
	return filepath.Base(f.Name()), func(replaced bool) {
		// Errors are not the PUT's: its object is in place whatever they are, and a PUT that
		// failed would have to be taken back. The marker's removal is in the page cache at
		// worst, which only a power cut loses.
		if os.Remove(f.Name()) == nil && replaced {
			_ = syncDir(dir)
		}
	}, nil
}

// dropUnstored undoes the PUTs a crash cut short: it puts back the files they replaced (kept in
// staging, keptPath) and removes the objects left without their metadata, and returns the
// bucket/key of those removed, and how many objects it looked at. root is the directory the
// backend serves: objects under buckets/<bucket>/<key>, metadata under metadata/<bucket>/<name>
// (metaName). It runs before newAtomicFs empties staging: emptied first, a crash in the middle of
// an overwrite would lose the previous object for good (the new one, unanswered, would stay with
// the previous one's metadata, or without any).
func dropUnstored(root string) (dropped []string, checked int, err error) {
	dir := pendingDir(root)
	markers, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		dropped, checked, err = dropUnstoredAll(root)
		if err == nil {
			err = os.MkdirAll(dir, 0o700)
		}
		if err == nil {
			err = syncDir(filepath.Dir(dir))
		}
		return dropped, checked, err
	}
	if err != nil {
		return nil, 0, fmt.Errorf("s3local: list the PUTs in progress in %s: %w", dir, err)
	}
	for _, m := range markers {
		path := filepath.Join(dir, m.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return dropped, checked, fmt.Errorf("s3local: read %s: %w", path, err)
		}
		// A marker cut short was never synced, so its PUT never began.
		if bucket, key, ok := strings.Cut(string(b), "\n"); ok && bucket != "" && key != "" {
			checked++
			if err := restoreKept(root, m.Name(), bucket, key); err != nil {
				return dropped, checked, err
			}
			gone, err := dropIfUnstored(root, bucket, key)
			if err != nil {
				return dropped, checked, err
			}
			if gone {
				dropped = append(dropped, bucket+"/"+key)
			}
		}
		if err := os.Remove(path); err != nil {
			return dropped, checked, fmt.Errorf("s3local: cross off %s: %w", path, err)
		}
	}
	return dropped, checked, nil
}

// restoreKept puts back the files the PUT id of bucket/key replaced and kept in staging (a
// crash cut it short): the object and metadata as they were before it. A PUT answered already
// keeps nothing (putStarted).
func restoreKept(root, id, bucket, key string) error {
	for role, final := range map[string]string{
		roleObject:   filepath.Join(root, "buckets", bucket, filepath.FromSlash(key)),
		roleMetadata: filepath.Join(root, "metadata", bucket, metaName(key)),
	} {
		kept := keptPath(stagingDir(root), id, role)
		err := os.Rename(kept, final)
		if errors.Is(err, fs.ErrNotExist) {
			continue // nothing replaced, or put back already
		}
		if err == nil {
			err = syncDir(filepath.Dir(final))
		}
		if err != nil {
			return fmt.Errorf("s3local: put back the %s of %s/%s a crash cut the PUT of short: %w", role, bucket, key, err)
		}
	}
	return nil
}

// dropIfUnstored removes bucket/key if it is in place without its metadata.
func dropIfUnstored(root, bucket, key string) (bool, error) {
	object := filepath.Join(root, "buckets", bucket, filepath.FromSlash(key))
	if _, err := os.Stat(object); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("s3local: %s/%s: %w", bucket, key, err)
	}
	_, err := os.Stat(filepath.Join(root, "metadata", bucket, metaName(key)))
	if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if err := os.Remove(object); err != nil {
		return false, fmt.Errorf("s3local: drop %s/%s: %w", bucket, key, err)
	}
	return true, nil
}

// dropUnstoredAll checks every object of every bucket under root (dropUnstored, without markers).
func dropUnstoredAll(root string) (dropped []string, checked int, err error) {
	buckets := filepath.Join(root, "buckets")
	entries, err := os.ReadDir(buckets)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("s3local: list buckets in %s: %w", buckets, err)
	}
	for _, b := range entries {
		if !b.IsDir() {
			continue
		}
		dir := filepath.Join(buckets, b.Name())
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(dir, path)
			if err != nil {
				return err
			}
			key := filepath.ToSlash(rel)
			checked++
			gone, err := dropIfUnstored(root, b.Name(), key)
			if gone {
				dropped = append(dropped, b.Name()+"/"+key)
			}
			return err
		})
		if err != nil {
			return dropped, checked, fmt.Errorf("s3local: objects without metadata in %s: %w", dir, err)
		}
	}
	return dropped, checked, nil
}

// metaName is the file s3afero (v1.2.0, metaStore.metaPath) keeps an object's metadata in.
func metaName(key string) string {
	h := fnv.New128a()
	h.Write([]byte(key))
	return strings.NewReplacer("/", "_", `\`, "_").Replace(key) + "-" + hex.EncodeToString(h.Sum(nil))
}
