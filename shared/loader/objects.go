package loader

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3Objects reads objects with the AWS SDK (Amazon S3, or any S3 server via the client's
// endpoint).
type S3Objects struct{ Client *s3.Client }

// ReadObject implements ObjectReader.
func (o S3Objects) ReadObject(ctx context.Context, bucket, key string, w io.Writer) (string, error) {
	out, err := o.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var nsk *types.NoSuchKey
		if errors.As(err, &nsk) {
			return "", fmt.Errorf("s3://%s/%s: %w", bucket, key, ErrObjectNotFound)
		}
		return "", fmt.Errorf("get s3://%s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	if _, err := io.Copy(w, out.Body); err != nil {
		return "", fmt.Errorf("read s3://%s/%s: %w", bucket, key, err)
	}
	return aws.ToString(out.ETag), nil
}

// DirObjects reads objects kept as files, <root>/<bucket>/<key>, as a local S3 server on disk
// keeps them. The ETag is the MD5 of the bytes, as S3 gives for a single-part upload.
type DirObjects string

// ReadObject implements ObjectReader.
func (d DirObjects) ReadObject(ctx context.Context, bucket, key string, w io.Writer) (string, error) {
	if !filepath.IsLocal(bucket) || !filepath.IsLocal(filepath.FromSlash(key)) {
		return "", fmt.Errorf("object %s/%s: not a key inside the bucket", bucket, key)
	}
	path := filepath.Join(string(d), bucket, filepath.FromSlash(key))
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s: %w", path, ErrObjectNotFound)
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(io.MultiWriter(w, h), f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ListObjects implements ObjectLister with ListObjectsV2.
func (o S3Objects) ListObjects(ctx context.Context, bucket, prefix string, fn func(key, etag string) error) error {
	return o.ListObjectsAfter(ctx, bucket, prefix, "", fn)
}

// ListObjectsAfter implements RangeLister with ListObjectsV2's StartAfter ("": from the start).
func (o S3Objects) ListObjectsAfter(ctx context.Context, bucket, prefix, startAfter string, fn func(key, etag string) error) error {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)}
	if startAfter != "" {
		in.StartAfter = aws.String(startAfter)
	}
	p := s3.NewListObjectsV2Paginator(o.Client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list s3://%s/%s after %q: %w", bucket, prefix, startAfter, err)
		}
		for _, obj := range page.Contents {
			if err := fn(aws.ToString(obj.Key), aws.ToString(obj.ETag)); err != nil {
				return err
			}
		}
	}
	return nil
}

// ListPrefixes implements RangeLister with ListObjectsV2's Delimiter "/".
func (o S3Objects) ListPrefixes(ctx context.Context, bucket, prefix string) ([]string, error) {
	p := s3.NewListObjectsV2Paginator(o.Client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix), Delimiter: aws.String("/")})
	var out []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list the prefixes of s3://%s/%s: %w", bucket, prefix, err)
		}
		for _, cp := range page.CommonPrefixes {
			out = append(out, aws.ToString(cp.Prefix))
		}
	}
	return out, nil
}

// ListObjects implements ObjectLister. It reads every file to give its MD5 ETag, so a catch-up
// over a large directory costs a read of it all.
func (d DirObjects) ListObjects(ctx context.Context, bucket, prefix string, fn func(key, etag string) error) error {
	return d.ListObjectsAfter(ctx, bucket, prefix, "", fn)
}

// ListPrefixes implements RangeLister: the directories under prefix (which ends in "/").
func (d DirObjects) ListPrefixes(ctx context.Context, bucket, prefix string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(string(d), bucket, filepath.FromSlash(prefix)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, prefix+e.Name()+"/")
		}
	}
	return out, err
}

// ListObjectsAfter implements RangeLister: the objects under prefix whose keys sort after
// startAfter (the whole bucket is walked; only those are read and given to fn).
func (d DirObjects) ListObjectsAfter(ctx context.Context, bucket, prefix, startAfter string, fn func(key, etag string) error) error {
	base := filepath.Join(string(d), bucket)
	return filepath.WalkDir(base, func(path string, e fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && path == base {
			return nil
		}
		if err != nil || e.IsDir() {
			return err
		}
		rel, err := filepath.Rel(base, path)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) || key <= startAfter {
			return nil
		}
		etag, err := d.ReadObject(ctx, bucket, key, io.Discard)
		if err != nil {
			return err
		}
		return fn(key, etag)
	})
}
