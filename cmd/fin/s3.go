package main

import (
	"context"
	"log/slog"
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
	fs := newFlags("s3", "[-addr host:port] [-dir path] [-bucket name] [-region name]")
	addr := fs.String("addr", s3local.DefaultAddr, "listen address")
	dir := fs.String("dir", filepath.Join(state, "s3"), "where objects are kept as files")
	bucket := fs.String("bucket", lake, "bucket to create if missing")
	region := fs.String("region", s3local.Region, "the region requests must be signed for")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// The same credentials as fin up's, made once in the state directory.
	credsPath := s3local.CredentialsPath(state)
	creds, err := s3local.EnsureCredentials(credsPath)
	if err != nil {
		return err
	}
	slog.Info("local S3 credentials", "file", credsPath, "profile", s3local.Profile)
	opts := []s3local.Option{s3local.WithBuckets(*bucket), s3local.WithCredentials(creds), s3local.WithRegion(*region)}
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
