package objectstore

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/minio/minio-go/v7"
)

// Objects reads and writes small whole objects of one bucket, such as the capture's manifest
// (it satisfies capture.ManifestStore).
type Objects struct {
	Client *minio.Client
	Bucket string
}

// Read returns the object's bytes, or nil and no error when the bucket holds no such object.
func (o Objects) Read(ctx context.Context, key string) ([]byte, error) {
	obj, err := o.Client.GetObject(ctx, o.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("get s3://%s/%s: %w", o.Bucket, key, err)
	}
	defer obj.Close()
	body, err := io.ReadAll(obj)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil, nil
		}
		return nil, fmt.Errorf("get s3://%s/%s: %w", o.Bucket, key, err)
	}
	return body, nil
}

// Write replaces the object with body (a single PUT: readers see the old or the new object).
func (o Objects) Write(ctx context.Context, key string, body []byte) error {
	_, err := o.Client.PutObject(ctx, o.Bucket, key, bytes.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{ContentType: "application/json"})
	if err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", o.Bucket, key, err)
	}
	return nil
}
