package s3local

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"maps"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// The payload hashes a SigV4 request to S3 may declare in x-amz-content-sha256 besides the hex
// SHA-256 of the body (S3 API reference, "Signature Calculations for the Authorization Header").
const (
	streamingSigned        = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrailer = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsignedTrail = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

// checksums are the algorithms of S3's additional checksums (x-amz-checksum-<name>, as a header
// or a trailer), each base64 of the big-endian digest. CRC-64/NVME is Go's reflected CRC-64 with
// its polynomial.
var checksums = map[string]func() hash.Hash{
	"x-amz-checksum-crc32":     func() hash.Hash { return crc32.NewIEEE() },
	"x-amz-checksum-crc32c":    func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) },
	"x-amz-checksum-crc64nvme": func() hash.Hash { return crc64.New(crc64.MakeTable(0x9a6c9329ac4bc9b5)) },
	"x-amz-checksum-sha1":      sha1.New,
	"x-amz-checksum-sha256":    sha256.New,
}

// memBody is the largest body kept in memory while it is verified; larger ones go to a file.
const memBody = 8 << 20

// spool holds a request body until it is verified: the next handler stores what it reads, so
// nothing reaches it before the whole body has passed its checks.
type spool struct {
	mem  bytes.Buffer
	file *os.File
	n    int64
}

func (s *spool) Write(p []byte) (int, error) {
	if s.file == nil && s.mem.Len()+len(p) > memBody {
		f, err := os.CreateTemp("", "s3local-body-*")
		if err != nil {
			return 0, err
		}
		s.file = f
		if _, err := f.Write(s.mem.Bytes()); err != nil {
			return 0, err
		}
		s.mem = bytes.Buffer{}
	}
	s.n += int64(len(p))
	if s.file != nil {
		return s.file.Write(p)
	}
	return s.mem.Write(p)
}

func (s *spool) reader() (io.Reader, error) {
	if s.file == nil {
		return bytes.NewReader(s.mem.Bytes()), nil
	}
	_, err := s.file.Seek(0, io.SeekStart)
	return s.file, err
}

func (s *spool) close() {
	if s.file != nil {
		s.file.Close()
		os.Remove(s.file.Name())
	}
}

// verifyPayload reads r's body through the checks its declared payload hash calls for (the hex
// SHA-256, every chunk signature of an aws-chunked body and its trailer, the additional
// checksums) and, once all passed, gives r the verified, decoded body for the next handler. The
// returned cleanup removes the spooled body.
func verifyPayload(r *http.Request, a *auth, creds Credentials) (func(), *s3Error) {
	sp := &spool{}
	cleanup := sp.close
	var sums map[string]hash.Hash
	var trailers map[string]string
	var err *s3Error
	switch h := a.payloadHash; {
	case h == streamingSigned || h == streamingSignedTrailer || h == streamingUnsignedTrail:
		if a.presigned {
			err = invalidRequest("a presigned URL cannot carry an aws-chunked payload")
			break
		}
		// A checksum may come as a header beside an aws-chunked body too; S3 checks both.
		sums = trailerHashes(r)
		maps.Copy(sums, headerHashes(r))
		trailers, err = decodeChunked(r, a, creds, io.MultiWriter(append(writers(sums), sp)...))
	case h == unsignedHash:
		sums = headerHashes(r)
		err = copyBody(io.MultiWriter(append(writers(sums), sp)...), r.Body)
	case isHexSHA256(h):
		sums = headerHashes(r)
		body := sha256.New()
		if err = copyBody(io.MultiWriter(append(writers(sums), sp, body)...), r.Body); err == nil && hex.EncodeToString(body.Sum(nil)) != h {
			err = badRequest("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.")
		}
	default:
		err = badRequest("InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.")
	}
	if err == nil {
		err = checkSums(r, sums, trailers)
	}
	if err == nil {
		err = replaceBody(r, sp, trailers != nil || strings.HasPrefix(a.payloadHash, "STREAMING-"))
	}
	if err != nil {
		cleanup()
		return nil, err
	}
	return cleanup, nil
}

func copyBody(dst io.Writer, body io.Reader) *s3Error {
	if _, err := io.Copy(dst, body); err != nil {
		return badRequest("IncompleteBody", "The request body terminated unexpectedly: %v", err)
	}
	return nil
}

// replaceBody hands the verified body on; an aws-chunked body is handed on decoded, its
// streaming headers gone, as a plain PUT of its content.
func replaceBody(r *http.Request, sp *spool, decoded bool) *s3Error {
	body, err := sp.reader()
	if err != nil {
		return &s3Error{Status: http.StatusInternalServerError, Code: "InternalError", Message: "spooled body: " + err.Error()}
	}
	r.Body, r.ContentLength = io.NopCloser(body), sp.n
	if r.Header.Get("Content-Length") != "" || decoded {
		r.Header.Set("Content-Length", strconv.FormatInt(sp.n, 10))
	}
	if decoded {
		for _, h := range []string{"X-Amz-Content-Sha256", "X-Amz-Decoded-Content-Length", "X-Amz-Trailer"} {
			r.Header.Del(h)
		}
		var enc []string
		for _, e := range strings.Split(r.Header.Get("Content-Encoding"), ",") {
			if e = strings.TrimSpace(e); e != "" && e != "aws-chunked" {
				enc = append(enc, e)
			}
		}
		if r.Header.Del("Content-Encoding"); len(enc) > 0 {
			r.Header.Set("Content-Encoding", strings.Join(enc, ","))
		}
	}
	return nil
}

// headerHashes are the additional checksums a PUT carries as headers (an object's or a part's).
func headerHashes(r *http.Request) map[string]hash.Hash {
	if r.Method != http.MethodPut {
		return nil
	}
	sums := map[string]hash.Hash{}
	for name, h := range checksums {
		if r.Header.Get(name) != "" {
			sums[name] = h()
		}
	}
	return sums
}

// trailerHashes are the checksums an aws-chunked body announces in x-amz-trailer.
func trailerHashes(r *http.Request) map[string]hash.Hash {
	sums := map[string]hash.Hash{}
	for _, name := range strings.Split(r.Header.Get("X-Amz-Trailer"), ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if h, ok := checksums[name]; ok {
			sums[name] = h()
		}
	}
	return sums
}

func writers(sums map[string]hash.Hash) []io.Writer {
	var ws []io.Writer
	for _, h := range sums {
		ws = append(ws, h)
	}
	return ws
}

// checkSums compares each computed checksum with the value the request gave, in its trailer or
// else its header.
func checkSums(r *http.Request, sums map[string]hash.Hash, trailers map[string]string) *s3Error {
	for name, h := range sums {
		given, ok := trailers[name]
		if !ok {
			given = r.Header.Get(name)
		}
		alg := strings.ToUpper(strings.TrimPrefix(name, "x-amz-checksum-"))
		if b, err := base64.StdEncoding.DecodeString(given); err != nil || len(b) != h.Size() {
			return invalidRequest("Value for %s header is invalid.", name)
		}
		if base64.StdEncoding.EncodeToString(h.Sum(nil)) != given {
			return badRequest("BadDigest", "The %s you specified did not match the calculated checksum.", alg)
		}
	}
	return nil
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}
