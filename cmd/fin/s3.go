package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/aws/aws-lambda-go/events"

	"github.com/fin-orchestrator/fin-orchestrator/shared/s3local"
	"github.com/fin-orchestrator/fin-orchestrator/shared/statedir"
)

func init() {
	register(command{name: "s3", summary: "serve the local S3 (files under .fin/s3) and log its ObjectCreated events", run: runS3})
}

// runS3 serves the local S3 on its own, to browse the lake with any S3 client while nothing
// else runs (`fin up` starts the same server with the loader listening to it).
func runS3(ctx context.Context, args []string) error {
	state, lake := statedir.Dir(), envOr("LAKE_BUCKET", "lake")
	fs := newFlags("s3", "[-addr host:port] [-dir path] [-bucket name]")
	addr := fs.String("addr", s3local.DefaultAddr, "listen address")
	dir := fs.String("dir", filepath.Join(state, "s3"), "where objects are kept as files")
	bucket := fs.String("bucket", lake, "bucket to create if missing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	opts := []s3local.Option{s3local.WithBuckets(*bucket)}
	if key := os.Getenv("FIN_S3_ACCESS_KEY"); key != "" {
		opts = append(opts, s3local.WithAccessKey(key))
	}
	srv, err := s3local.Start(ctx, *addr, *dir, func(ev events.S3Event) {
		for _, r := range ev.Records {
			slog.Info("object created", "bucket", r.S3.Bucket.Name, "key", r.S3.Object.URLDecodedKey,
				"size", r.S3.Object.Size)
		}
	}, opts...)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return srv.Close()
}
