package s3local

import "path/filepath"

// MetaName is metaName: where s3afero keeps an object's metadata, under metadata/<bucket>/.
var MetaName = metaName

// PendingDir is pendingDir: where the markers of the PUTs in progress are.
var PendingDir = pendingDir

// CrashMidOverwrite leaves in root (a stopped server's directory) what a crash in the middle of
// a PUT of bucket/key with body leaves: its marker, the new object in place over the previous
// one (kept in staging), and with metadata also the new metadata (body's bytes stand in for it)
// over the previous, the PUT neither ended nor answered.
func CrashMidOverwrite(root, bucket, key string, body []byte, metadata bool) error {
	fs, err := newAtomicFs(root) // a running server's staging
	if err != nil {
		return err
	}
	id, _, err := putStarted(root, bucket, key)
	if err != nil {
		return err
	}
	object, meta := filepath.Join("buckets", bucket, filepath.FromSlash(key)), filepath.Join("metadata", bucket, metaName(key))
	fs.begin(id, object, meta)
	names := []string{object}
	if metadata {
		names = append(names, meta)
	}
	for _, n := range names {
		f, err := fs.Create(n)
		if err == nil {
			_, err = f.Write(body)
		}
		if err == nil {
			err = f.Close()
		}
		if err != nil {
			return err
		}
	}
	return nil
}
