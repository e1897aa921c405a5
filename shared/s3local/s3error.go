package s3local

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"sync/atomic"
)

// s3Error is an error answered as S3 does: the status, and an <Error> document with S3's code,
// its message and, for some codes, the fields S3 adds to help the caller (never a secret).
type s3Error struct {
	Status  int      `xml:"-"`
	XMLName xml.Name `xml:"Error"`
	Code    string
	Message string
	// Set by some codes, as S3 does.
	AWSAccessKeyID             string `xml:"AWSAccessKeyId,omitempty"`
	StringToSign               string `xml:",omitempty"`
	SignatureProvided          string `xml:",omitempty"`
	CanonicalRequest           string `xml:",omitempty"`
	RequestTime                string `xml:",omitempty"`
	ServerTime                 string `xml:",omitempty"`
	MaxAllowedSkewMilliseconds string `xml:",omitempty"`
	HeadersNotSigned           string `xml:",omitempty"`
	Region                     string `xml:",omitempty"`
	RequestID                  string `xml:"RequestId"`
	HostID                     string `xml:"HostId"`
}

func (e *s3Error) Error() string { return e.Code + ": " + e.Message }

// The codes S3 answers a request that fails authentication with.
func accessDenied(msg string) *s3Error {
	return &s3Error{Status: http.StatusForbidden, Code: "AccessDenied", Message: msg}
}

func invalidAccessKey(id string) *s3Error {
	return &s3Error{Status: http.StatusForbidden, Code: "InvalidAccessKeyId", AWSAccessKeyID: id,
		Message: "The AWS Access Key Id you provided does not exist in our records."}
}

func signatureMismatch(id, stringToSign, provided, canonical string) *s3Error {
	return &s3Error{Status: http.StatusForbidden, Code: "SignatureDoesNotMatch", AWSAccessKeyID: id,
		StringToSign: stringToSign, SignatureProvided: provided, CanonicalRequest: canonical,
		Message: "The request signature we calculated does not match the signature you provided. Check your key and signing method."}
}

func malformedAuth(presigned bool, format string, args ...any) *s3Error {
	if presigned {
		return &s3Error{Status: http.StatusBadRequest, Code: "AuthorizationQueryParametersError", Message: fmt.Sprintf(format, args...)}
	}
	return &s3Error{Status: http.StatusBadRequest, Code: "AuthorizationHeaderMalformed",
		Message: "The authorization header is malformed; " + fmt.Sprintf(format, args...)}
}

func invalidRequest(format string, args ...any) *s3Error {
	return &s3Error{Status: http.StatusBadRequest, Code: "InvalidRequest", Message: fmt.Sprintf(format, args...)}
}

func badRequest(code, format string, args ...any) *s3Error {
	return &s3Error{Status: http.StatusBadRequest, Code: code, Message: fmt.Sprintf(format, args...)}
}

var requestSeq atomic.Uint64

// write answers the error; a HEAD answer has no body, as S3's.
func (e *s3Error) write(w http.ResponseWriter, r *http.Request) {
	e.RequestID = fmt.Sprintf("%016X", requestSeq.Add(1))
	e.HostID = "fin-local"
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("x-amz-request-id", e.RequestID)
	w.WriteHeader(e.Status)
	if r.Method == http.MethodHead {
		return
	}
	body, _ := xml.Marshal(e)
	_, _ = w.Write(append([]byte(xml.Header), body...))
}
