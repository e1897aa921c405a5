// Package objectstore opens an S3 client (minio-go) for Amazon S3 or any S3-compatible server:
// the local in-process server, versitygw, MinIO.
package objectstore

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Config says which S3 to talk to.
type Config struct {
	// Endpoint is the S3_ENDPOINT URL, e.g. http://127.0.0.1:9000. Empty means Amazon S3 in
	// Region.
	Endpoint string
	// Region defaults to us-east-1.
	Region string
	// AccessKey, SecretKey and SessionToken are static credentials (a Lambda's role gives all
	// three in its environment). When empty, the AWS_* environment and then the instance/task
	// role are used.
	AccessKey, SecretKey, SessionToken string
}

// ConfigFromEnv is the configuration a function reads from its environment: S3_ENDPOINT,
// AWS_REGION and the role's credentials that Lambda sets (the local stack sets the local S3's).
func ConfigFromEnv(getenv func(string) string) Config {
	return Config{Endpoint: getenv("S3_ENDPOINT"), Region: getenv("AWS_REGION"),
		AccessKey: getenv("AWS_ACCESS_KEY_ID"), SecretKey: getenv("AWS_SECRET_ACCESS_KEY"), SessionToken: getenv("AWS_SESSION_TOKEN")}
}

// Open returns a client for cfg. Other endpoints than Amazon S3 get path-style bucket URLs,
// which every S3 server understands.
func Open(cfg Config) (*minio.Client, error) {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	host, secure, lookup := "s3."+cfg.Region+".amazonaws.com", true, minio.BucketLookupAuto
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("S3 endpoint %q: want http(s)://host[:port]", cfg.Endpoint)
		}
		if strings.Trim(u.Path, "/") != "" {
			return nil, fmt.Errorf("S3 endpoint %q: a path is not supported", cfg.Endpoint)
		}
		host, secure = u.Host, u.Scheme == "https"
		if !strings.HasSuffix(u.Hostname(), ".amazonaws.com") {
			lookup = minio.BucketLookupPath
		}
	}
	creds := credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.IAM{},
	})
	if cfg.AccessKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)
	}
	client, err := minio.New(host, &minio.Options{
		Creds: creds, Secure: secure, Region: cfg.Region, BucketLookup: lookup,
	})
	if err != nil {
		return nil, fmt.Errorf("S3 client for %s: %w", host, err)
	}
	return client, nil
}
