package s3local_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/fin-orchestrator/fin-orchestrator/shared/s3local"
)

var testCreds = s3local.Credentials{AccessKeyID: "FINTESTKEY0000000001", SecretAccessKey: "dGVzdC1zZWNyZXQtZm9yLXMzbG9jYWwtdGVzdHM0"}

// startS3 starts the local S3 with testCreds and a bucket "lake"; dir holds its objects.
func startS3(t *testing.T) (srv *s3local.Server, dir string) {
	t.Helper()
	dir = t.TempDir()
	srv, err := s3local.Start(t.Context(), "127.0.0.1:0", dir, nil, s3local.WithBuckets("lake"), s3local.WithCredentials(testCreds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, dir
}

// tamper is a client transport that records the payload hash of each request and may change a
// request's body (same length) or headers after the client signed it.
type tamper struct {
	mu     sync.Mutex
	hashes []string
	status int    // of the last PUT's response
	code   string // its S3 error code
	body   func([]byte) []byte
	header func(http.Header)
	next   http.RoundTripper
}

func (tp *tamper) RoundTrip(r *http.Request) (*http.Response, error) {
	tp.mu.Lock()
	tp.hashes = append(tp.hashes, r.Header.Get("X-Amz-Content-Sha256"))
	tp.mu.Unlock()
	if r.Method == http.MethodPut && (tp.body != nil || tp.header != nil) {
		r = r.Clone(r.Context())
		if tp.header != nil {
			tp.header(r.Header)
		}
		if tp.body != nil && r.Body != nil {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return nil, err
			}
			b = tp.body(b)
			r.Body, r.GetBody = io.NopCloser(bytes.NewReader(b)), nil
		}
	}
	resp, err := tp.next.RoundTrip(r)
	if err != nil || r.Method != http.MethodPut {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	var e s3Err
	xml.Unmarshal(b, &e)
	tp.mu.Lock()
	tp.status, tp.code = resp.StatusCode, e.Code
	tp.mu.Unlock()
	return resp, err
}

func (tp *tamper) sawHash(h string) bool {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	for _, got := range tp.hashes {
		if got == h {
			return true
		}
	}
	return false
}

func minioClient(t *testing.T, endpoint string, creds s3local.Credentials, trailers bool, tp *tamper) *minio.Client {
	t.Helper()
	u, _ := url.Parse(endpoint)
	c, err := minio.New(u.Host, &minio.Options{Creds: miniocreds.NewStaticV4(creds.AccessKeyID, creds.SecretAccessKey, ""),
		Region: s3local.Region, BucketLookup: minio.BucketLookupPath, TrailingHeaders: trailers, Transport: tp, Secure: u.Scheme == "https"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sdkClient(endpoint string, creds s3local.Credentials, client *http.Client) *s3.Client {
	if client == nil {
		client = &http.Client{}
	}
	return s3.New(s3.Options{Region: s3local.Region, BaseEndpoint: aws.String(endpoint), UsePathStyle: true, HTTPClient: client,
		Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, "")})
}

// flipData changes the object's data in a request body (the first "payload-xx"), keeping its
// length.
func flipData(b []byte) []byte {
	return bytes.Replace(b, []byte("payload-xx"), []byte("payload-yy"), 1)
}

// body is the object put: 100 kB, more than one chunk of minio-go's and the SDK's aws-chunked
// bodies (64 kB).
var body = bytes.Repeat([]byte("payload-xx"), 10000)

// TestRealClientsSign: what the clients the stack uses send is accepted, stored and read back:
// minio-go's aws-chunked uploads (signed chunks, and signed chunks with a signed checksum
// trailer; over TLS, an unsigned trailer), aws-sdk-go-v2's PutObject (a signed payload with a CRC32 header over HTTP, and an
// unsigned payload with a CRC32 trailer over TLS), and a presigned GET.
func TestRealClientsSign(t *testing.T) {
	srv, dir := startS3(t)
	tlsSrv := httptest.NewTLSServer(s3local.Verify(testCreds, s3local.Region, time.Now, memS3(t)))
	defer tlsSrv.Close()
	for _, tc := range []struct {
		name, payload string
		put           func(t *testing.T, tp *tamper, key string) (stored func() ([]byte, error))
	}{
		{"minio-go aws-chunked", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", func(t *testing.T, tp *tamper, key string) func() ([]byte, error) {
			c := minioClient(t, srv.URL, testCreds, false, tp)
			mustNot(t, putMinio(t, c, key, false))
			return func() ([]byte, error) { return os.ReadFile(filepath.Join(dir, "buckets", "lake", key)) }
		}},
		{"minio-go aws-chunked with a signed checksum trailer", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", func(t *testing.T, tp *tamper, key string) func() ([]byte, error) {
			c := minioClient(t, srv.URL, testCreds, true, tp)
			mustNot(t, putMinio(t, c, key, true))
			return func() ([]byte, error) { return getMinio(t, c, key) }
		}},
		{"minio-go over TLS, unsigned CRC32C trailer", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", func(t *testing.T, tp *tamper, key string) func() ([]byte, error) {
			tp.next = tlsSrv.Client().Transport
			c := minioClient(t, tlsSrv.URL, testCreds, true, tp)
			mustNot(t, putMinio(t, c, key, true))
			return func() ([]byte, error) { return getMinio(t, c, key) }
		}},
		{"aws-sdk-go-v2 signed payload, CRC32 header", "sha256", func(t *testing.T, tp *tamper, key string) func() ([]byte, error) {
			c := sdkClient(srv.URL, testCreds, &http.Client{Transport: tp})
			mustNot(t, putSDK(t, c, key, types.ChecksumAlgorithmCrc32))
			return func() ([]byte, error) { return getSDK(t, c, key) }
		}},
		{"aws-sdk-go-v2 over TLS, CRC64NVME trailer", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", func(t *testing.T, tp *tamper, key string) func() ([]byte, error) {
			tp.next = tlsSrv.Client().Transport
			c := sdkClient(tlsSrv.URL, testCreds, &http.Client{Transport: tp})
			mustNot(t, putSDK(t, c, key, types.ChecksumAlgorithmCrc64nvme))
			return func() ([]byte, error) { return getSDK(t, c, key) }
		}},
		{"presigned GET", "", func(t *testing.T, tp *tamper, key string) func() ([]byte, error) {
			c := sdkClient(srv.URL, testCreds, nil)
			mustNot(t, putSDK(t, c, key, ""))
			req, err := s3.NewPresignClient(c).PresignGetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("lake"), Key: aws.String(key)},
				s3.WithPresignExpires(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			return func() ([]byte, error) { return httpGet(req.URL) }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := &tamper{next: http.DefaultTransport}
			key := "bronze/t/dt=2026-11-25/" + strings.ReplaceAll(tc.name, " ", "_") + " x.parquet"
			got, err := tc.put(t, tp, key)()
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("read back %d bytes (%v); want the %d bytes put", len(got), err, len(body))
			}
			if tc.payload == "sha256" {
				sum := sha256.Sum256(body)
				tc.payload = hex.EncodeToString(sum[:])
			}
			if tc.payload != "" && !tp.sawHash(tc.payload) {
				t.Errorf("the client sent payload hashes %q, not %s: this case does not test what it says", tp.hashes, tc.payload)
			}
		})
	}
}

func memS3(t *testing.T) http.Handler {
	b := s3mem.New()
	if err := b.CreateBucket("lake"); err != nil {
		t.Fatal(err)
	}
	return gofakes3.New(b, gofakes3.WithTimeSkewLimit(0)).Server()
}

// putMinio puts body with minio-go; a client with trailing headers sends a CRC32C trailer.
func putMinio(t *testing.T, c *minio.Client, key string, trailer bool) error {
	var opts minio.PutObjectOptions
	if trailer {
		opts.Checksum = minio.ChecksumCRC32C
	}
	_, err := c.PutObject(t.Context(), "lake", key, bytes.NewReader(body), int64(len(body)), opts)
	return err
}

func getMinio(t *testing.T, c *minio.Client, key string) ([]byte, error) {
	o, err := c.GetObject(t.Context(), "lake", key, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return io.ReadAll(o)
}

func putSDK(t *testing.T, c *s3.Client, key string, alg types.ChecksumAlgorithm) error {
	_, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("lake"), Key: aws.String(key),
		Body: bytes.NewReader(body), ChecksumAlgorithm: alg})
	return err
}

func getSDK(t *testing.T, c *s3.Client, key string) ([]byte, error) {
	o, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("lake"), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer o.Body.Close()
	return io.ReadAll(o.Body)
}

func httpGet(u string) ([]byte, error) {
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return b, errors.New(resp.Status + ": " + string(b))
	}
	return b, err
}

func mustNot(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// s3Err is S3's error document.
type s3Err struct {
	Code, Message string
}

// signed builds a request to the server signed by aws-sdk-go-v2's signer with creds at when.
func signed(t *testing.T, method, u string, payload []byte, hash string, creds s3local.Credentials, when time.Time, region string, hdr map[string]string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if hash == "" {
		sum := sha256.Sum256(payload)
		hash = hex.EncodeToString(sum[:])
	}
	req.Header.Set("X-Amz-Content-Sha256", hash)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey},
		req, hash, "s3", region, when); err != nil {
		t.Fatal(err)
	}
	return req
}

// presigned is a presigned GET URL from aws-sdk-go-v2's signer, made at when for expires.
func presigned(t *testing.T, u string, creds s3local.Credentials, when time.Time, expires string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u+"?X-Amz-Expires="+expires, nil)
	out, _, err := v4.NewSigner().PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey},
		req, "UNSIGNED-PAYLOAD", "s3", s3local.Region, when)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRefusesBadRequests: each kind of request S3 refuses gets S3's status and code, and a
// refused PUT stores nothing.
func TestRefusesBadRequests(t *testing.T) {
	srv, dir := startS3(t)
	tlsSrv := httptest.NewTLSServer(s3local.Verify(testCreds, s3local.Region, time.Now, memS3(t)))
	defer tlsSrv.Close()
	now := time.Now()
	obj := srv.URL + "/lake/refused/object.parquet"
	wrongSecret := s3local.Credentials{AccessKeyID: testCreds.AccessKeyID, SecretAccessKey: "not-the-secret-not-the-secret-not-the-se"}
	unknownKey := s3local.Credentials{AccessKeyID: "FINUNKNOWN0000000000", SecretAccessKey: testCreds.SecretAccessKey}
	raw := func(req *http.Request) func(*testing.T) (int, string) {
		return func(t *testing.T) (int, string) { return do(t, req) }
	}
	url := func(u string) func(*testing.T) (int, string) {
		return func(t *testing.T) (int, string) {
			req, _ := http.NewRequest(http.MethodGet, u, nil)
			return do(t, req)
		}
	}
	client := func(put func(t *testing.T, tp *tamper) error, tp *tamper) func(*testing.T) (int, string) {
		return func(t *testing.T) (int, string) {
			if err := put(t, tp); err == nil {
				t.Error("the client's put succeeded")
			}
			return tp.status, tp.code
		}
	}
	minioPut := func(trailers bool) func(t *testing.T, tp *tamper) error {
		return func(t *testing.T, tp *tamper) error {
			return putMinio(t, minioClient(t, srv.URL, testCreds, trailers, tp), "refused/object.parquet", trailers)
		}
	}
	sdkTLSPut := func(t *testing.T, tp *tamper) error {
		return putSDK(t, sdkClient(tlsSrv.URL, testCreds, &http.Client{Transport: tp}), "refused/object.parquet", types.ChecksumAlgorithmCrc32)
	}
	changedPath := signed(t, http.MethodGet, obj, nil, "", testCreds, now, s3local.Region, nil)
	changedPath.URL.Path = "/lake/refused/other.parquet"
	addedHeader := signed(t, http.MethodPut, obj, body, "", testCreds, now, s3local.Region, nil)
	addedHeader.Header.Set("X-Amz-Meta-Owner", "intruder")
	noHash := signed(t, http.MethodGet, obj, nil, "", testCreds, now, s3local.Region, nil)
	noHash.Header.Del("X-Amz-Content-Sha256")
	sigV2, _ := http.NewRequest(http.MethodGet, obj, nil)
	sigV2.Header.Set("Authorization", "AWS "+testCreds.AccessKeyID+":frJIUN8DYpKDtOLCwo//yllqDzg=")
	otherSum := sha256.Sum256([]byte("something else"))
	for _, tc := range []struct {
		name   string
		send   func(*testing.T) (int, string)
		status int
		code   string
	}{
		{"unsigned GET", url(obj), 403, "AccessDenied"},
		{"unsigned PUT", raw(mustReq(t, http.MethodPut, obj, body)), 403, "AccessDenied"},
		{"wrong secret", raw(signed(t, http.MethodGet, obj, nil, "", wrongSecret, now, s3local.Region, nil)), 403, "SignatureDoesNotMatch"},
		{"unknown access key", raw(signed(t, http.MethodGet, obj, nil, "", unknownKey, now, s3local.Region, nil)), 403, "InvalidAccessKeyId"},
		{"signed 16 minutes ago", raw(signed(t, http.MethodGet, obj, nil, "", testCreds, now.Add(-16*time.Minute), s3local.Region, nil)), 403, "RequestTimeTooSkewed"},
		{"signed 16 minutes ahead", raw(signed(t, http.MethodGet, obj, nil, "", testCreds, now.Add(16*time.Minute), s3local.Region, nil)), 403, "RequestTimeTooSkewed"},
		{"signed for another region", raw(signed(t, http.MethodGet, obj, nil, "", testCreds, now, "eu-west-1", nil)), 400, "AuthorizationHeaderMalformed"},
		{"path changed after signing", raw(changedPath), 403, "SignatureDoesNotMatch"},
		{"x-amz-meta header added after signing", raw(addedHeader), 403, "AccessDenied"},
		{"Signature Version 2", raw(sigV2), 400, "InvalidRequest"},
		{"no x-amz-content-sha256", raw(noHash), 400, "InvalidRequest"},
		{"x-amz-content-sha256 not a hash", raw(signed(t, http.MethodPut, obj, body, "abc", testCreds, now, s3local.Region, nil)), 400, "InvalidArgument"},
		{"body differs from x-amz-content-sha256", raw(signed(t, http.MethodPut, obj, body, hex.EncodeToString(otherSum[:]), testCreds, now, s3local.Region, nil)), 400, "XAmzContentSHA256Mismatch"},
		{"CRC32 header differs from the body", raw(signed(t, http.MethodPut, obj, body, "UNSIGNED-PAYLOAD", testCreds, now, s3local.Region,
			map[string]string{"X-Amz-Checksum-Crc32": "AAAAAA=="})), 400, "BadDigest"},
		{"presigned with Signature Version 2", url(obj + "?AWSAccessKeyId=" + testCreds.AccessKeyID + "&Signature=uoiq9prmsrAB0Yv%2B%2B%2ByFo4RoQZk%3D&Expires=1796492883"), 400, "InvalidRequest"},
		{"presigned URL expired", url(presigned(t, obj, testCreds, now.Add(-2*time.Hour), "3600")), 403, "AccessDenied"},
		{"presigned for more than a week", url(presigned(t, obj, testCreds, now, "604801")), 400, "AuthorizationQueryParametersError"},
		{"presigned for 0 seconds", url(presigned(t, obj, testCreds, now, "0")), 400, "AuthorizationQueryParametersError"},
		{"presigned URL with another key", url(strings.Replace(presigned(t, obj, testCreds, now, "60"), "object.parquet", "other.parquet", 1)), 403, "SignatureDoesNotMatch"},
		{"presigned by an unknown access key", url(presigned(t, obj, unknownKey, now, "60")), 403, "InvalidAccessKeyId"},
		{"presigned with a wrong secret", url(presigned(t, obj, wrongSecret, now, "60")), 403, "SignatureDoesNotMatch"},
		{"aws-chunked: a chunk changed after signing", client(minioPut(false), &tamper{next: http.DefaultTransport, body: flipData}), 403, "SignatureDoesNotMatch"},
		{"aws-chunked: the trailer changed after signing", client(minioPut(true), &tamper{next: http.DefaultTransport, body: func(b []byte) []byte {
			return bytes.Replace(b, []byte("x-amz-checksum-crc32c:"), []byte("x-amz-checksum-crc32c:A"), 1)[:len(b)]
		}}), 403, "SignatureDoesNotMatch"},
		{"aws-chunked: decoded length too short", client(minioPut(false), &tamper{next: http.DefaultTransport, header: func(h http.Header) {
			h.Set("X-Amz-Decoded-Content-Length", "10") // a signed header
		}}), 403, "SignatureDoesNotMatch"},
		{"aws-chunked: fewer bytes than x-amz-decoded-content-length", raw(chunked(t, obj, now, len(body)+1, nil)), 400, "IncompleteBody"},
		{"aws-chunked: more bytes than x-amz-decoded-content-length", raw(chunked(t, obj, now, len(body)-1, nil)), 400, "IncompleteBody"},
		{"aws-chunked: a CRC32 header that differs from the body", raw(chunkedWith(t, obj, now, len(body), nil, map[string]string{"X-Amz-Checksum-Crc32": "AAAAAA=="})), 400, "BadDigest"},
		{"aws-chunked: two chunks swapped", raw(chunked(t, obj, now, len(body), func(chunks [][]byte) { chunks[0], chunks[1] = chunks[1], chunks[0] })), 403, "SignatureDoesNotMatch"},
		{"aws-chunked: the last chunk left out", raw(chunked(t, obj, now, len(body), func(chunks [][]byte) { chunks[len(chunks)-1] = nil })), 400, "IncompleteBody"},
		{"aws-chunked unsigned trailer: data changed after checksumming", client(sdkTLSPut, &tamper{next: tlsSrv.Client().Transport, body: flipData}), 400, "BadDigest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, code := tc.send(t)
			if status != tc.status || code != tc.code {
				t.Errorf("got %d %s, want %d %s", status, code, tc.status, tc.code)
			}
			if _, err := os.Stat(filepath.Join(dir, "buckets", "lake", "refused", "object.parquet")); err == nil {
				t.Fatal("the refused request stored the object")
			}
		})
	}
}

// TestPresignedLimits: a presigned URL is good from 1 second to a week, as in S3.
func TestPresignedLimits(t *testing.T) {
	srv, _ := startS3(t)
	obj := srv.URL + "/lake/limits.txt"
	mustNot(t, putSDK(t, sdkClient(srv.URL, testCreds, nil), "limits.txt", ""))
	for _, expires := range []string{"1", "604800"} {
		if got, err := httpGet(presigned(t, obj, testCreds, time.Now(), expires)); err != nil || !bytes.Equal(got, body) {
			t.Errorf("X-Amz-Expires=%s: %d bytes, %v; want the object", expires, len(got), err)
		}
	}
	// Made a week ago, valid for a week and a minute: expired a minute ago. Made 30 s ago for a
	// minute: still good.
	if _, err := httpGet(presigned(t, obj, testCreds, time.Now().Add(-time.Minute-604800*time.Second), "604800")); err == nil {
		t.Error("a week-old URL valid for a week was accepted")
	}
	if _, err := httpGet(presigned(t, obj, testCreds, time.Now().Add(-30*time.Second), "60")); err != nil {
		t.Errorf("a URL made 30 s ago for 60 s: %v", err)
	}
}

// chunked is a PUT of body as signed aws-chunked (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) made with
// aws-sdk-go-v2's signers: the seed signature by the HTTP signer, each chunk's by its stream signer
// (whose string to sign, with no event headers, is the chunk's). It declares decodedLength; edit
// changes the encoded chunks (the last one is the empty final chunk) before they are joined.
func chunked(t *testing.T, u string, when time.Time, decodedLength int, edit func([][]byte)) *http.Request {
	t.Helper()
	return chunkedWith(t, u, when, decodedLength, edit, nil)
}

// chunkedWith is chunked with more signed headers (a checksum header beside the chunks).
func chunkedWith(t *testing.T, u string, when time.Time, decodedLength int, edit func([][]byte), headers map[string]string) *http.Request {
	t.Helper()
	const hash = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	h := map[string]string{"Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": strconv.Itoa(decodedLength)}
	maps.Copy(h, headers)
	req := signed(t, http.MethodPut, u, nil, hash, testCreds, when, s3local.Region, h)
	_, sig, _ := strings.Cut(req.Header.Get("Authorization"), "Signature=")
	seed, _ := hex.DecodeString(sig)
	ss := v4.NewStreamSigner(aws.Credentials{AccessKeyID: testCreds.AccessKeyID, SecretAccessKey: testCreds.SecretAccessKey}, "s3", s3local.Region, seed)
	var chunks [][]byte
	for rest := body; ; rest = rest[min(len(rest), 64<<10):] {
		data := rest[:min(len(rest), 64<<10)]
		cs, err := ss.GetSignature(t.Context(), nil, data, when)
		if err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, append([]byte(strconv.FormatInt(int64(len(data)), 16)+";chunk-signature="+hex.EncodeToString(cs)+"\r\n"), append(data, "\r\n"...)...))
		if len(data) == 0 {
			break
		}
	}
	if edit != nil {
		edit(chunks)
	}
	encoded := bytes.Join(chunks, nil)
	req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(encoded)), int64(len(encoded))
	return req
}

func mustReq(t *testing.T, method, u string, payload []byte) *http.Request {
	req, err := http.NewRequest(method, u, bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// do sends req and returns its status and S3 error code.
func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e s3Err
	b, _ := io.ReadAll(resp.Body)
	if err := xml.Unmarshal(b, &e); err != nil && resp.StatusCode >= 300 {
		t.Errorf("error body is not S3's error document: %q", b)
	}
	if resp.StatusCode >= 300 && e.Message == "" {
		t.Errorf("error %s has no message: %q", e.Code, b)
	}
	return resp.StatusCode, e.Code
}

// TestChunkedBySDKSigners: the aws-chunked body the bad cases above edit is accepted unedited.
func TestChunkedBySDKSigners(t *testing.T) {
	srv, dir := startS3(t)
	if status, code := do(t, chunked(t, srv.URL+"/lake/chunked.bin", time.Now(), len(body), nil)); status != http.StatusOK {
		t.Fatalf("got %d %s, want 200", status, code)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "buckets", "lake", "chunked.bin")); err != nil || !bytes.Equal(got, body) {
		t.Errorf("stored %d bytes (%v), want the %d decoded bytes", len(got), err, len(body))
	}
}

// TestMultipartUpload: minio-go's multipart upload (parts of 9 MiB as signed aws-chunked bodies,
// each spooled to a file while verified, being over the 8 MB kept in memory) is stored whole.
func TestMultipartUpload(t *testing.T) {
	srv, dir := startS3(t)
	tp := &tamper{next: http.DefaultTransport}
	c := minioClient(t, srv.URL, testCreds, false, tp)
	big := bytes.Repeat([]byte("0123456789abcdef"), 20<<16) // 20 MiB
	if _, err := c.PutObject(t.Context(), "lake", "big.bin", bytes.NewReader(big), int64(len(big)),
		minio.PutObjectOptions{PartSize: 9 << 20}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "buckets", "lake", "big.bin"))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("stored %d bytes (%v), want the %d put", len(got), err, len(big))
	}
	parts := 0
	for _, h := range tp.hashes {
		if h == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" {
			parts++
		}
	}
	if parts != 3 {
		t.Errorf("minio-go sent payload hashes %q: not three parts as signed chunks, which this test is about", tp.hashes)
	}
}
