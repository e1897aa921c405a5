package s3local

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// maxChunk bounds one chunk of an aws-chunked body (clients send 8-64 KiB; the memory is ours).
const maxChunk = 16 << 20

// chunkedBody reads an aws-chunked body (S3 API reference, "Signature Calculations for the
// Authorization Header: Transferring Payload in Multiple Chunks" and "...Including Trailing
// Headers"): chunks "<hex size>[;chunk-signature=<sig>]\r\n<data>\r\n", a last chunk of size 0,
// then, for the trailer variants, trailing headers ("x-amz-checksum-crc32:<base64>") and, when
// signed, "x-amz-trailer-signature:<sig>". Each chunk's signature chains from the previous one,
// the first from the request's own signature.
type chunkedBody struct {
	br      *bufio.Reader
	signed  bool
	trailer bool
	key     []byte
	prefix  string // the date and scope lines of each chunk's string to sign
	prev    string // the previous signature
	access  string
}

// decodeChunked writes the decoded content of r's aws-chunked body to dst, verifying every chunk
// signature, the trailer's and the decoded length; it returns the trailing headers.
func decodeChunked(r *http.Request, a *auth, creds Credentials, dst io.Writer) (map[string]string, *s3Error) {
	want, err := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
	if err != nil || want < 0 {
		return nil, &s3Error{Status: http.StatusLengthRequired, Code: "MissingContentLength",
			Message: "You must provide a valid x-amz-decoded-content-length header with an aws-chunked body."}
	}
	c := &chunkedBody{br: bufio.NewReader(r.Body), signed: a.payloadHash != streamingUnsignedTrail,
		trailer: strings.HasSuffix(a.payloadHash, "-TRAILER"), prev: a.signature, access: a.accessKey,
		key:    signingKey(creds.SecretAccessKey, a.scopeDate, a.region, a.service),
		prefix: a.amzDate + "\n" + a.scope() + "\n"}
	var n int64
	buf := make([]byte, 0, 64<<10)
	for {
		size, sig, e := c.header()
		if e != nil {
			return nil, e
		}
		if n+size > want {
			return nil, badRequest("IncompleteBody", "The aws-chunked body holds more than the %d bytes of x-amz-decoded-content-length.", want)
		}
		buf = buf[:0]
		if cap(buf) < int(size) {
			buf = make([]byte, 0, size)
		}
		if _, err := io.ReadFull(c.br, buf[:size]); err != nil {
			return nil, incomplete(err)
		}
		if e := c.checkChunk(buf[:size], sig); e != nil {
			return nil, e
		}
		if _, err := dst.Write(buf[:size]); err != nil {
			return nil, &s3Error{Status: http.StatusInternalServerError, Code: "InternalError", Message: "spool body: " + err.Error()}
		}
		n += size
		if size == 0 {
			break
		}
		if e := c.expectCRLF(); e != nil {
			return nil, e
		}
	}
	if n != want {
		return nil, badRequest("IncompleteBody", "You did not provide the number of bytes specified by the x-amz-decoded-content-length header (%d of %d).", n, want)
	}
	if !c.trailer {
		return nil, c.expectCRLF()
	}
	return c.trailers(r)
}

// header reads a chunk's "<hex size>[;chunk-signature=<sig>]" line.
func (c *chunkedBody) header() (int64, string, *s3Error) {
	line, e := c.line()
	if e != nil {
		return 0, "", e
	}
	sizeHex, ext, _ := strings.Cut(line, ";")
	size, err := strconv.ParseInt(sizeHex, 16, 64)
	if err != nil || size < 0 || size > maxChunk {
		return 0, "", badRequest("InvalidChunkSizeError", "The chunk size %q is not a hex size of at most %d bytes.", sizeHex, maxChunk)
	}
	if !c.signed {
		return size, "", nil
	}
	sig, ok := strings.CutPrefix(ext, "chunk-signature=")
	if !ok {
		return 0, "", accessDenied("A chunk of a signed aws-chunked body has no chunk-signature.")
	}
	return size, sig, nil
}

// checkChunk verifies a chunk's signature, chained from the previous one.
func (c *chunkedBody) checkChunk(data []byte, sig string) *s3Error {
	if !c.signed {
		return nil
	}
	sum := sha256.Sum256(data)
	sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + c.prefix + c.prev + "\n" + emptySHA256 + "\n" + hex.EncodeToString(sum[:])
	return c.checkSig(sts, sig)
}

func (c *chunkedBody) checkSig(stringToSign, sig string) *s3Error {
	want := hex.EncodeToString(hmacSHA256(c.key, stringToSign))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return signatureMismatch(c.access, stringToSign, sig, "")
	}
	c.prev = sig
	return nil
}

// trailers reads the trailing headers after the last chunk and, for a signed body, verifies
// their signature over "<name>:<value>\n" of each. minio-go ends each trailing header with "\n"
// before the "\r\n" that precedes the signature: blank lines before it are skipped.
func (c *chunkedBody) trailers(r *http.Request) (map[string]string, *s3Error) {
	got := map[string]string{}
	var canonical strings.Builder
	pending := c.signed // the trailer's signature is still to come
	for {
		line, e := c.line()
		if e != nil {
			return nil, e
		}
		if line == "" && pending && len(got) > 0 {
			continue
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value)
		switch {
		case !ok, c.signed && !pending, name == "x-amz-trailer-signature" && !c.signed: // nothing after the signature
			return nil, malformedTrailer()
		case name == "x-amz-trailer-signature":
			sum := sha256.Sum256([]byte(canonical.String()))
			if e := c.checkSig("AWS4-HMAC-SHA256-TRAILER\n"+c.prefix+c.prev+"\n"+hex.EncodeToString(sum[:]), value); e != nil {
				return nil, e
			}
			pending = false
		default:
			got[name] = value
			canonical.WriteString(name + ":" + value + "\n")
		}
	}
	if pending {
		return nil, accessDenied("The aws-chunked body has no x-amz-trailer-signature.")
	}
	for _, name := range strings.Split(r.Header.Get("X-Amz-Trailer"), ",") {
		if name = strings.ToLower(strings.TrimSpace(name)); name != "" && got[name] == "" {
			return nil, malformedTrailer()
		}
	}
	return got, nil
}

func malformedTrailer() *s3Error {
	return badRequest("MalformedTrailerError", "The request contained trailing data that was not well-formed or did not conform to our published schema.")
}

// line reads one line, without its "\r\n" (or "\n").
func (c *chunkedBody) line() (string, *s3Error) {
	var b []byte
	for {
		part, err := c.br.ReadSlice('\n')
		b = append(b, part...)
		if len(b) > 4096 {
			return "", badRequest("IncompleteBody", "A line of the aws-chunked body is longer than 4096 bytes.")
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return "", incomplete(err)
		}
		return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), nil
	}
}

func (c *chunkedBody) expectCRLF() *s3Error {
	line, e := c.line()
	if e == nil && line != "" {
		e = badRequest("IncompleteBody", "A chunk of the aws-chunked body is longer than its size says.")
	}
	return e
}

func incomplete(err error) *s3Error {
	return badRequest("IncompleteBody", "The aws-chunked body ended early: %v", err)
}
