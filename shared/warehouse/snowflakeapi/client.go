// Package snowflakeapi runs read queries on Snowflake through its SQL REST API
// (/api/v2/statements) with key-pair JWT authentication, using only net/http and the standard
// library's crypto. It exists for the API Lambda: the gosnowflake driver would add about 9 MB to
// its bootstrap for a handful of SELECTs. Results come back through database/sql, so code
// written against *sql.Rows (history.Querier) runs unchanged on it.
package snowflakeapi

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rsa"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/fin-orchestrator/fin-orchestrator/shared/retry"
)

// Config says where to run statements and as whom.
type Config struct {
	Account   string // account identifier, e.g. myorg-myaccount or xy12345.us-east-2.aws
	User      string
	Role      string // "" : the user's default role
	Warehouse string // "" : the user's default warehouse
	Database  string
	Schema    string
	// PrivateKey signs the key-pair JWT; its public key is the user's RSA_PUBLIC_KEY.
	PrivateKey *rsa.PrivateKey
	// BaseURL is the server, default https://<account>.snowflakecomputing.com.
	BaseURL string
	// HTTP sends the requests; nil: a client whose per-request timeout is 30 s.
	HTTP *http.Client
	// Timeout bounds a statement when the context has no deadline (default 60 s); it is sent as
	// the statement's own timeout, so Snowflake stops it too.
	Timeout time.Duration
	// Application names the caller in the User-Agent (Snowflake's query history shows it).
	Application string
}

// Client runs statements. Safe for concurrent use.
type Client struct {
	cfg  Config
	base string
	hc   *http.Client
	jwt  *signer
	db   *sql.DB
}

// New checks cfg and returns a client; it sends nothing until the first query.
func New(cfg Config) (*Client, error) {
	var missing []string
	for _, f := range []struct{ name, v string }{{"account", cfg.Account}, {"user", cfg.User}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if cfg.PrivateKey == nil {
		missing = append(missing, "private key")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("snowflake sql api: no %s configured", strings.Join(missing, ", "))
	}
	jwt, err := newSigner(cfg.Account, cfg.User, cfg.PrivateKey, time.Now)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, base: strings.TrimSuffix(cfg.BaseURL, "/"), hc: cfg.HTTP, jwt: jwt}
	if c.base == "" {
		c.base = "https://" + cfg.Account + ".snowflakecomputing.com"
	}
	if c.hc == nil {
		// No client timeout: every call runs under a context deadline (cfg.Timeout at most), and
		// Snowflake may hold a POST up to 45 s before answering 202 with a handle to poll.
		c.hc = &http.Client{}
	}
	if c.cfg.Timeout <= 0 {
		c.cfg.Timeout = 60 * time.Second
	}
	c.db = sql.OpenDB(connector{c})
	return c, nil
}

// DB is the client as a database/sql pool: queries only (no transactions, no prepared
// statements), with positional (?) arguments that are strings, integers, booleans or floats.
// history.DB{DB: c.DB()} is a history.Querier.
func (c *Client) DB() *sql.DB { return c.db }

// Close releases the pool.
func (c *Client) Close() error { return c.db.Close() }

// Error is a statement Snowflake refused or failed, with its code and SQL state.
type Error struct {
	Status   int    // HTTP status
	Code     string `json:"code"`
	Message  string `json:"message"`
	SQLState string `json:"sqlState"`
	Handle   string `json:"statementHandle"`
}

func (e *Error) Error() string {
	s := "HTTP " + strconv.Itoa(e.Status)
	if e.Code != "" {
		s += " code " + e.Code
	}
	if e.SQLState != "" {
		s += " (sql state " + e.SQLState + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Handle != "" {
		s += " [statement " + e.Handle + "]"
	}
	return s
}

// resultSet is the body of a 200 (and, without data, of a 202: code, handle, status URL).
type resultSet struct {
	Code      string      `json:"code"`
	Message   string      `json:"message"`
	Handle    string      `json:"statementHandle"`
	StatusURL string      `json:"statementStatusUrl"`
	Meta      *resultMeta `json:"resultSetMetaData"`
	Data      [][]*string `json:"data"`
	accepted  bool        // a 202: the statement is still running
}

type resultMeta struct {
	NumRows    int64    `json:"numRows"`
	Format     string   `json:"format"`
	RowType    []Column `json:"rowType"`
	Partitions []struct {
		RowCount int64 `json:"rowCount"`
	} `json:"partitionInfo"`
}

// statement is the body of POST /api/v2/statements.
type statement struct {
	Statement string             `json:"statement"`
	Timeout   int64              `json:"timeout"`
	Database  string             `json:"database,omitempty"`
	Schema    string             `json:"schema,omitempty"`
	Warehouse string             `json:"warehouse,omitempty"`
	Role      string             `json:"role,omitempty"`
	Bindings  map[string]binding `json:"bindings,omitempty"`
}

// pollInterval is the first wait before asking again about a statement still running (202);
// each wait doubles up to maxPollInterval.
const (
	pollInterval    = 50 * time.Millisecond
	maxPollInterval = time.Second
)

// submitRetry is how a submission that never reached Snowflake (retryable) is sent again.
var submitRetry = retry.Policy{Attempts: 3, Backoff: retry.Backoff{First: 200 * time.Millisecond},
	Again: func(_ int, _ time.Duration, err error) bool { return retryable(err) }}

// execute submits one statement and waits for its first partition of results.
func (c *Client) execute(ctx context.Context, query string, args map[string]binding) (*resultSet, error) {
	timeout := c.cfg.Timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	body, err := json.Marshal(statement{
		Statement: query, Timeout: max(1, int64(math.Ceil(timeout.Seconds()))),
		Database: c.cfg.Database, Schema: c.cfg.Schema, Warehouse: c.cfg.Warehouse, Role: c.cfg.Role,
		Bindings: args,
	})
	if err != nil {
		return nil, fmt.Errorf("snowflake sql api: encode statement: %w", err)
	}
	// The request id makes a resubmission (retry=true) return the first submission's statement
	// instead of running it twice.
	q := url.Values{"requestId": {uuid.NewString()}}
	var res *resultSet
	err = retry.Do(ctx, submitRetry, func(ctx context.Context) (err error) {
		res, err = c.do(ctx, http.MethodPost, "/api/v2/statements?"+q.Encode(), body)
		q.Set("retry", "true")
		return err
	})
	wait := pollInterval
	for err == nil && res.accepted {
		// 202: still running. Ask again at the status URL until it answers with the results.
		if res.StatusURL == "" {
			return nil, fmt.Errorf("snowflake sql api: statement %s: an answer with neither results nor a status URL (code %s: %s)", res.Handle, res.Code, res.Message)
		}
		if !sleep(ctx, wait) {
			c.cancel(res.Handle)
			return nil, fmt.Errorf("snowflake sql api: statement %s still running: %w", res.Handle, ctx.Err())
		}
		wait = min(2*wait, maxPollInterval)
		status := strings.TrimPrefix(res.StatusURL, c.base)
		if !strings.HasPrefix(status, "/") {
			// The token goes only to the configured server.
			return nil, fmt.Errorf("snowflake sql api: statement %s: status URL %q is not on %s", res.Handle, res.StatusURL, c.base)
		}
		handle := res.Handle
		if res, err = c.do(ctx, http.MethodGet, status, nil); err != nil {
			c.cancel(handle) // we stop asking, so the warehouse should stop running it
		}
	}
	if err != nil {
		return nil, err
	}
	if res.Meta == nil {
		return nil, fmt.Errorf("snowflake sql api: statement %s: an answer without resultSetMetaData (code %s: %s)", res.Handle, res.Code, res.Message)
	}
	if f := res.Meta.Format; f != "" && f != "jsonv2" {
		return nil, fmt.Errorf("snowflake sql api: statement %s: results in format %q, want jsonv2", res.Handle, f)
	}
	return res, nil
}

// partition fetches partition n (from 1; partition 0 came with the statement's answer).
func (c *Client) partition(ctx context.Context, handle string, n int) ([][]*string, error) {
	res, err := c.do(ctx, http.MethodGet, "/api/v2/statements/"+url.PathEscape(handle)+"?partition="+strconv.Itoa(n), nil)
	if err != nil {
		return nil, fmt.Errorf("partition %d: %w", n, err)
	}
	return res.Data, nil
}

// cancel asks Snowflake to stop a statement the caller gave up on; best effort.
func (c *Client) cancel(handle string) {
	if handle == "" {
		return
	}
	ctx, stop := context.WithTimeout(context.Background(), 2*time.Second)
	defer stop()
	c.do(ctx, http.MethodPost, "/api/v2/statements/"+url.PathEscape(handle)+"/cancel", nil)
}

// transportError is a request that got no answer, or an answer worth submitting again for
// (429, 503, 504): retrying a submission is safe with its request id.
type transportError struct{ err error }

func (e transportError) Error() string { return e.err.Error() }
func (e transportError) Unwrap() error { return e.err }

func retryable(err error) bool { var t transportError; return errors.As(err, &t) }

// do sends one request and decodes a 200 or 202; any other answer is an *Error.
func (c *Client) do(ctx context.Context, method, path string, body []byte) (*resultSet, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("snowflake sql api: %s %s: %w", method, path, err)
	}
	token, err := c.jwt.Token()
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Snowflake-Authorization-Token-Type", "KEYPAIR_JWT")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "fin-orchestrator/"+cmp.Or(c.cfg.Application, "snowflakeapi"))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	what := method + " " + strings.SplitN(path, "?", 2)[0]
	res, err := c.hc.Do(req)
	if err != nil {
		// The URL holds no secret; the error may, if ever, only echo it.
		return nil, transportError{fmt.Errorf("snowflake sql api: %s: %w", what, err)}
	}
	defer res.Body.Close()
	// Partitions are bounded by Snowflake (about 10-20 MB uncompressed); 64 MB is a guard.
	raw, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, transportError{fmt.Errorf("snowflake sql api: %s: read answer: %w", what, err)}
	}
	switch res.StatusCode {
	case http.StatusOK, http.StatusAccepted:
		var rs resultSet
		if err := json.Unmarshal(raw, &rs); err != nil {
			return nil, fmt.Errorf("snowflake sql api: %s: answer %d is not a result set: %w", what, res.StatusCode, err)
		}
		rs.accepted = res.StatusCode == http.StatusAccepted
		return &rs, nil
	}
	e := &Error{Status: res.StatusCode}
	if json.Unmarshal(raw, e) != nil || (e.Code == "" && e.Message == "") {
		e.Message = strings.TrimSpace(string(raw[:min(len(raw), 300)]))
	}
	err = fmt.Errorf("snowflake sql api: %s: %w", what, e)
	switch res.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return nil, transportError{err}
	}
	return nil, err
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
