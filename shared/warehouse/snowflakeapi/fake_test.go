package snowflakeapi_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/snowflakeapi"
)

// sqlAPI is an httptest server answering as Snowflake's SQL API documents: it checks every
// request's key-pair JWT against the public key, and answers each statement with what answer
// returns for it.
type sqlAPI struct {
	t   *testing.T
	srv *httptest.Server
	key *rsa.PrivateKey
	// answer serves a POST /api/v2/statements and the GETs and cancels that follow it.
	answer func(w http.ResponseWriter, r *http.Request, st submitted)

	mu       sync.Mutex
	requests []string // "METHOD path?query", in order
	posts    []submitted
}

// submitted is a statement as the client sent it.
type submitted struct {
	Statement string `json:"statement"`
	Timeout   int64  `json:"timeout"`
	Database  string `json:"database"`
	Schema    string `json:"schema"`
	Warehouse string `json:"warehouse"`
	Role      string `json:"role"`
	Bindings  map[string]struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"bindings"`
}

const (
	testAccount = "myorg-acct1"
	testUser    = "fin_api"
)

func newSQLAPI(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, st submitted)) *sqlAPI {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := &sqlAPI{t: t, key: key, answer: answer}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// client is a client of the fake with the test's account, user, role, warehouse and database.
func (f *sqlAPI) client(t *testing.T) *snowflakeapi.Client {
	t.Helper()
	c, err := snowflakeapi.New(snowflakeapi.Config{
		Account: testAccount, User: testUser, Role: "FIN_READER", Warehouse: "READ_WH", Database: "FIN",
		PrivateKey: f.key, BaseURL: f.srv.URL, Application: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (f *sqlAPI) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
	f.mu.Unlock()
	if err := f.checkAuth(r); err != nil {
		f.t.Errorf("%s %s: %v", r.Method, r.URL, err)
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"code":"390144","message":"JWT token is invalid."}`)
		return
	}
	var st submitted
	if r.Method == http.MethodPost && r.URL.Path == "/api/v2/statements" {
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			f.t.Errorf("POST statement with Content-Type %q, want application/json", ct)
		}
		if err := json.NewDecoder(r.Body).Decode(&st); err != nil {
			f.t.Errorf("statement body: %v", err)
		}
		f.mu.Lock()
		f.posts = append(f.posts, st)
		f.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	f.answer(w, r, st)
}

// checkAuth verifies the headers and the JWT as Snowflake would: RS256 signed by the user's key,
// iss <ACCOUNT>.<USER>.SHA256:<fingerprint>, sub <ACCOUNT>.<USER>, not expired, short-lived.
func (f *sqlAPI) checkAuth(r *http.Request) error {
	if tt := r.Header.Get("X-Snowflake-Authorization-Token-Type"); tt != "KEYPAIR_JWT" {
		return fmt.Errorf("X-Snowflake-Authorization-Token-Type %q, want KEYPAIR_JWT", tt)
	}
	if a := r.Header.Get("Accept"); a != "application/json" {
		return fmt.Errorf("Accept %q, want application/json", a)
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return fmt.Errorf("no Bearer token")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return fmt.Errorf("token of %d parts, want 3", len(parts))
	}
	var header struct{ Alg, Typ string }
	var claims struct {
		Iss, Sub string
		Iat, Exp int64
	}
	for i, dst := range []any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return fmt.Errorf("token part %d: %v", i, err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return fmt.Errorf("token part %d: %v", i, err)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return fmt.Errorf("token signature: %v", err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&f.key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
		return fmt.Errorf("token signature does not verify with the user's public key: %v", err)
	}
	fp, err := snowflakeapi.Fingerprint(&f.key.PublicKey)
	if err != nil {
		return err
	}
	now := time.Now().Unix()
	switch {
	case header.Alg != "RS256" || header.Typ != "JWT":
		return fmt.Errorf("token header %+v, want RS256 JWT", header)
	case claims.Sub != "MYORG-ACCT1.FIN_API":
		return fmt.Errorf("sub %q, want MYORG-ACCT1.FIN_API", claims.Sub)
	case claims.Iss != "MYORG-ACCT1.FIN_API."+fp:
		return fmt.Errorf("iss %q, want MYORG-ACCT1.FIN_API.%s", claims.Iss, fp)
	case claims.Iat > now+5 || claims.Exp <= now || claims.Exp-claims.Iat > 3600:
		return fmt.Errorf("iat %d exp %d at %d: want issued now, valid now, for at most an hour", claims.Iat, claims.Exp, now)
	}
	return nil
}

func (f *sqlAPI) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

func (f *sqlAPI) submitted() []submitted {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]submitted(nil), f.posts...)
}

// reply writes status and body.
func reply(w http.ResponseWriter, status int, body string) {
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

// resultSet is a 200 body of the documented shape: rowType, partition 0's rows, partitionInfo.
func resultSet(handle, rowType string, data [][]any, partitions int) string {
	d, _ := json.Marshal(data)
	info := make([]string, partitions)
	for i := range info {
		info[i] = `{"rowCount":2,"uncompressedSize":100}`
	}
	return fmt.Sprintf(`{"resultSetMetaData":{"numRows":%d,"format":"jsonv2","partitionInfo":[%s],"rowType":%s},
		"data":%s,"code":"090001","statementStatusUrl":"/api/v2/statements/%s?requestId=x","requestId":"x",
		"sqlState":"00000","statementHandle":"%s","message":"Statement executed successfully.","createdOn":1764057610000}`,
		len(data), strings.Join(info, ","), rowType, d, handle, handle)
}

// secretMap is a SecretReader over fixed secrets.
type secretMap map[string]string

func (m secretMap) String(_ context.Context, id string) (string, error) {
	if s, ok := m[id]; ok {
		return s, nil
	}
	return "", fmt.Errorf("no secret %s", id)
}

// testKeyPEM is a fresh RSA key in PKCS#8 PEM.
func testKeyPEM(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func jsonString(s string) string { b, _ := json.Marshal(s); return string(b) }
