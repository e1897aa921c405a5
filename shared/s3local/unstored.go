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

// dropUnstored removes the objects a crash left without their metadata, and returns their
// bucket/key. gofakes3's file backend renames an object into place, then writes its metadata,
// and only then answers the PUT (and the server announces it); kill -9 in between leaves an object
// that no PUT acknowledged and no event announced, as if the PUT had failed, which S3 allows. Kept,
// it broke every listing of its prefix for good: s3afero v1.2.0's loadMeta, finding no metadata,
// hashes the missing metadata file instead of the object and fails, so ListObjectsV2 answered 500
// InternalError and the loader's catch-up never saw the lake again (66-lost-lake.sh: the objects
// landed before the kill and not yet loaded stayed out of the warehouse, reported lost). root is
// the directory the backend serves: objects under buckets/<bucket>/<key>, metadata under
// metadata/<bucket>/<name> (metaName).
func dropUnstored(root string) ([]string, error) {
	buckets := filepath.Join(root, "buckets")
	entries, err := os.ReadDir(buckets)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("s3local: list buckets in %s: %w", buckets, err)
	}
	var dropped []string
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
			_, err = os.Stat(filepath.Join(root, "metadata", b.Name(), metaName(key)))
			if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if err := os.Remove(path); err != nil {
				return err
			}
			dropped = append(dropped, b.Name()+"/"+key)
			return nil
		})
		if err != nil {
			return dropped, fmt.Errorf("s3local: objects without metadata in %s: %w", dir, err)
		}
	}
	return dropped, nil
}

// metaName is the file s3afero (v1.2.0, metaStore.metaPath) keeps an object's metadata in.
func metaName(key string) string {
	h := fnv.New128a()
	h.Write([]byte(key))
	return strings.NewReplacer("/", "_", `\`, "_").Replace(key) + "-" + hex.EncodeToString(h.Sum(nil))
}
