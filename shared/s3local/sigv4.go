package s3local

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The rules AWS applies to SigV4 requests to S3 (S3 API reference, "Authenticating Requests
// (AWS Signature Version 4)"): requests more than 15 minutes from the server's clock are refused,
// and a presigned URL lives 1 s to 7 days.
const (
	maxSkew       = 15 * time.Minute
	maxPresign    = 604800 // seconds
	algorithm     = "AWS4-HMAC-SHA256"
	amzDateFormat = "20060102T150405Z"
	unsignedHash  = "UNSIGNED-PAYLOAD"
	emptySHA256   = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// Credentials are the one key pair the local S3 accepts.
type Credentials struct {
	AccessKeyID, SecretAccessKey string
}

// auth is what a request's signature claims: from its Authorization header or, for a presigned
// URL, its X-Amz-* query parameters.
type auth struct {
	presigned     bool
	accessKey     string
	scopeDate     string // yyyymmdd of the credential scope
	region        string
	service       string
	terminator    string
	at            time.Time // X-Amz-Date
	amzDate       string
	expires       time.Duration // presigned only
	signedHeaders []string
	signature     string
	payloadHash   string // x-amz-content-sha256, or UNSIGNED-PAYLOAD for a presigned URL
}

func (a *auth) scope() string {
	return strings.Join([]string{a.scopeDate, a.region, a.service, a.terminator}, "/")
}

// parseAuth reads the signature a request claims; a request that claims none is refused with
// AccessDenied, as S3 refuses an anonymous request to a private bucket.
func parseAuth(r *http.Request) (*auth, *s3Error) {
	header, query := r.Header.Get("Authorization"), r.URL.Query()
	switch {
	case header != "" && query.Has("X-Amz-Algorithm"):
		return nil, invalidRequest("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified")
	case header != "":
		return parseHeaderAuth(r, header)
	case query.Has("X-Amz-Algorithm") || query.Has("X-Amz-Signature") || query.Has("X-Amz-Credential"):
		return parsePresigned(query)
	case query.Has("AWSAccessKeyId") || query.Has("Signature"): // a Signature Version 2 URL
		return nil, invalidRequest("The authorization mechanism you have provided is not supported. Please use %s.", algorithm)
	}
	return nil, accessDenied("Access Denied")
}

func parseHeaderAuth(r *http.Request, header string) (*auth, *s3Error) {
	alg, rest, _ := strings.Cut(header, " ")
	if alg != algorithm {
		return nil, invalidRequest("The authorization mechanism you have provided is not supported. Please use %s.", algorithm)
	}
	a := &auth{}
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok {
			return nil, malformedAuth(false, "the component %q is not a key=value pair.", f)
		}
		fields[k] = v
	}
	for _, k := range []string{"Credential", "SignedHeaders", "Signature"} {
		if fields[k] == "" {
			return nil, malformedAuth(false, "it has no %s.", k)
		}
	}
	if err := a.parseCredential(fields["Credential"], false); err != nil {
		return nil, err
	}
	a.signedHeaders, a.signature = strings.Split(fields["SignedHeaders"], ";"), fields["Signature"]
	a.amzDate = r.Header.Get("X-Amz-Date")
	var err error
	if a.amzDate != "" {
		a.at, err = time.Parse(amzDateFormat, a.amzDate)
	} else if d := r.Header.Get("Date"); d != "" {
		a.at, err = http.ParseTime(d)
		a.amzDate = a.at.UTC().Format(amzDateFormat)
	} else {
		return nil, accessDenied("AWS authentication requires a valid Date or x-amz-date header")
	}
	if err != nil {
		return nil, accessDenied("AWS authentication requires a valid Date or x-amz-date header")
	}
	if a.payloadHash = r.Header.Get("X-Amz-Content-Sha256"); a.payloadHash == "" {
		return nil, invalidRequest("Missing required header for this request: x-amz-content-sha256")
	}
	return a, nil
}

func parsePresigned(q url.Values) (*auth, *s3Error) {
	for _, k := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Expires"} {
		if q.Get(k) == "" {
			return nil, malformedAuth(true, "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
		}
	}
	if q.Get("X-Amz-Algorithm") != algorithm {
		return nil, malformedAuth(true, "X-Amz-Algorithm only supports \"%s\"", algorithm)
	}
	a := &auth{presigned: true, signature: q.Get("X-Amz-Signature"), amzDate: q.Get("X-Amz-Date"),
		signedHeaders: strings.Split(q.Get("X-Amz-SignedHeaders"), ";"), payloadHash: unsignedHash}
	if err := a.parseCredential(q.Get("X-Amz-Credential"), true); err != nil {
		return nil, err
	}
	var err error
	if a.at, err = time.Parse(amzDateFormat, a.amzDate); err != nil {
		return nil, malformedAuth(true, "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
	}
	secs, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	switch {
	case err != nil:
		return nil, malformedAuth(true, "X-Amz-Expires should be a number")
	case secs < 1:
		return nil, malformedAuth(true, "X-Amz-Expires must be at least 1 second")
	case secs > maxPresign:
		return nil, malformedAuth(true, "X-Amz-Expires must be less than a week (in seconds) that is 604800")
	}
	a.expires = time.Duration(secs) * time.Second
	if h := q.Get("X-Amz-Content-Sha256"); h != "" {
		a.payloadHash = h
	}
	return a, nil
}

// parseCredential reads <key id>/<yyyymmdd>/<region>/<service>/aws4_request.
func (a *auth) parseCredential(cred string, presigned bool) *s3Error {
	parts := strings.Split(cred, "/")
	if len(parts) != 5 {
		return malformedAuth(presigned, "the Credential %q is not <access key id>/<date>/<region>/<service>/aws4_request.", cred)
	}
	a.accessKey, a.scopeDate, a.region, a.service, a.terminator = parts[0], parts[1], parts[2], parts[3], parts[4]
	return nil
}

// check verifies a's claims against the server's credentials, region and clock, then the
// signature over r: the access key, the scope, the time, the headers that must be signed, and the
// signature itself, in the order S3 reports them.
func (a *auth) check(r *http.Request, creds Credentials, region string, now time.Time) *s3Error {
	if a.accessKey != creds.AccessKeyID {
		return invalidAccessKey(a.accessKey)
	}
	if r.Header.Get("X-Amz-Security-Token") != "" || r.URL.Query().Get("X-Amz-Security-Token") != "" {
		// The local key pair is long-term: S3 refuses a session token with such a key.
		return badRequest("InvalidToken", "The provided token is malformed or otherwise invalid.")
	}
	switch {
	case a.terminator != "aws4_request":
		return malformedAuth(a.presigned, "the credential scope must end in aws4_request, not %q.", a.terminator)
	case a.service != "s3":
		return malformedAuth(a.presigned, "incorrect service %q. This endpoint belongs to \"s3\".", a.service)
	case a.region != region:
		e := malformedAuth(a.presigned, "the region %q is wrong; expecting %q", a.region, region)
		e.Region = region
		return e
	case a.scopeDate != a.amzDate[:min(8, len(a.amzDate))]:
		return malformedAuth(a.presigned, "Invalid credential date %q. Date is not the same as X-Amz-Date.", a.scopeDate)
	}
	if err := a.checkTime(now); err != nil {
		return err
	}
	if err := a.checkSignedHeaders(r); err != nil {
		return err
	}
	canonical := a.canonicalRequest(r)
	stringToSign := a.stringToSign(canonical)
	want := hex.EncodeToString(hmacSHA256(signingKey(creds.SecretAccessKey, a.scopeDate, a.region, a.service), stringToSign))
	if !hmac.Equal([]byte(want), []byte(a.signature)) {
		return signatureMismatch(a.accessKey, stringToSign, a.signature, canonical)
	}
	return nil
}

// checkTime refuses a request signed more than 15 minutes from now, and a presigned URL that has
// expired or is not valid yet.
func (a *auth) checkTime(now time.Time) *s3Error {
	if a.presigned {
		switch {
		case now.After(a.at.Add(a.expires)):
			e := accessDenied("Request has expired")
			e.RequestTime, e.ServerTime = a.at.Format(time.RFC3339), now.UTC().Format(time.RFC3339)
			return e
		case a.at.After(now.Add(maxSkew)):
			return accessDenied("Request is not valid yet")
		}
		return nil
	}
	if skew := now.Sub(a.at); skew > maxSkew || skew < -maxSkew {
		return &s3Error{Status: http.StatusForbidden, Code: "RequestTimeTooSkewed",
			Message:     "The difference between the request time and the current time is too large.",
			RequestTime: a.at.UTC().Format(amzDateFormat), ServerTime: now.UTC().Format(time.RFC3339),
			MaxAllowedSkewMilliseconds: strconv.FormatInt(maxSkew.Milliseconds(), 10)}
	}
	return nil
}

// checkSignedHeaders requires host among the signed headers and, for a header-signed request,
// every x-amz-* header the request carries, as S3 does.
func (a *auth) checkSignedHeaders(r *http.Request) *s3Error {
	var missing []string
	if !slices.Contains(a.signedHeaders, "host") {
		missing = append(missing, "host")
	}
	if !a.presigned {
		for name := range r.Header {
			l := strings.ToLower(name)
			if strings.HasPrefix(l, "x-amz-") && !slices.Contains(a.signedHeaders, l) {
				missing = append(missing, l)
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(missing)
	e := accessDenied("There were headers present in the request which were not signed")
	e.HeadersNotSigned = strings.Join(missing, ", ")
	return e
}

// canonicalRequest is SigV4's canonical form of r: method, URI, query, the signed headers and the
// payload hash. S3 encodes the path once (other services twice).
func (a *auth) canonicalRequest(r *http.Request) string {
	var b strings.Builder
	b.WriteString(r.Method + "\n")
	b.WriteString(canonicalURI(r.URL.EscapedPath()) + "\n")
	b.WriteString(canonicalQuery(r.URL.Query(), a.presigned) + "\n")
	for _, h := range a.signedHeaders {
		b.WriteString(h + ":" + headerValue(r, h) + "\n")
	}
	b.WriteString("\n" + strings.Join(a.signedHeaders, ";") + "\n")
	b.WriteString(a.payloadHash)
	return b.String()
}

func (a *auth) stringToSign(canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return strings.Join([]string{algorithm, a.amzDate, a.scope(), hex.EncodeToString(sum[:])}, "\n")
}

// canonicalURI re-encodes each segment of the escaped path, so an encoded slash in a key stays
// one.
func canonicalURI(escaped string) string {
	if escaped == "" {
		return "/"
	}
	segments := strings.Split(escaped, "/")
	for i, s := range segments {
		if u, err := url.PathUnescape(s); err == nil {
			s = u
		}
		segments[i] = uriEncode(s)
	}
	return strings.Join(segments, "/")
}

func canonicalQuery(q url.Values, presigned bool) string {
	var pairs []string
	for k, vs := range q {
		if presigned && k == "X-Amz-Signature" {
			continue
		}
		for _, v := range vs {
			pairs = append(pairs, uriEncode(k)+"="+uriEncode(v))
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

// headerValue is a signed header's canonical value: its values trimmed, inner runs of spaces
// folded to one, joined by commas. Go keeps Host and Content-Length out of the header map.
func headerValue(r *http.Request, name string) string {
	switch name {
	case "host":
		return r.Host
	case "content-length":
		if v := r.Header.Get("Content-Length"); v != "" {
			return v
		}
		return strconv.FormatInt(r.ContentLength, 10)
	}
	vs := r.Header.Values(name)
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(out, ",")
}

// uriEncode percent-encodes everything but SigV4's unreserved characters (A-Z a-z 0-9 - _ . ~).
func uriEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
		}
	}
	return b.String()
}

func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// Verify is an http middleware that lets through to next only the requests S3 would accept
// from the holder of creds in region: a valid AWS Signature Version 4 in the Authorization
// header (with its payload hash, or every chunk signature of an aws-chunked body, checked against
// the body) or in a presigned URL, made within 15 minutes of now (a presigned URL: before it
// expires). Every other request gets S3's error document and code. A body reaches next only
// once all of it has passed, decoded when it was aws-chunked.
func Verify(creds Credentials, region string, now func() time.Time, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := parseAuth(r)
		if err == nil {
			err = a.check(r, creds, region, now())
		}
		var cleanup func()
		if err == nil {
			cleanup, err = verifyPayload(r, a, creds)
		}
		if err != nil {
			err.write(w, r)
			return
		}
		defer cleanup()
		next.ServeHTTP(w, r)
	})
}
