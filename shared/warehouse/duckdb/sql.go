package duckdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bearer"
	"github.com/fin-orchestrator/fin-orchestrator/shared/secretfile"
)

// While the stack runs it holds the warehouse file, so `fin sql` sends its query to the stack:
// POST the query as the body, with "Authorization: Bearer <token>", and the answer is CSV. The
// token lives in a file only its owner can read, beside the warehouse file.

// SQLErrorTrailer carries an error that happened after the CSV started streaming.
const SQLErrorTrailer = "X-Sql-Error"

// minToken is the shortest token accepted: 128 bits in hex (EnsureToken writes 256).
const minToken = 32

// maxQuery bounds the body of a query request.
const maxQuery = 1 << 20

// TokenPath is the token file of the warehouse at warehousePath.
func TokenPath(warehousePath string) string {
	return filepath.Join(filepath.Dir(warehousePath), "sql.token")
}

// EnsureToken returns the token stored at path, first writing a new random one (mode 0600) when
// there is none.
func EnsureToken(path string) (string, error) {
	tok, err := ReadToken(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return tok, err
	}
	b := make([]byte, 32)
	rand.Read(b)
	tok = hex.EncodeToString(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("sql token: %w", err)
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("sql token: %w", err)
	}
	return tok, nil
}

// ReadToken reads the token at path, refusing a file that others than its owner may read.
func ReadToken(path string) (string, error) {
	b, err := secretfile.Read(path, "sql token")
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	fix := "remove it and restart the stack (fin up makes a new one)"
	if len(tok) < minToken {
		return "", fmt.Errorf("sql token %s has %d bytes, fewer than %d (a crash while writing it?): %s", path, len(tok), minToken, fix)
	}
	if _, err := hex.DecodeString(tok); err != nil {
		return "", fmt.Errorf("sql token %s is corrupt (not hex): %s", path, fix)
	}
	return tok, nil
}

// SQLHandler answers POSTed queries with CSV. Mount it on the runtime's local console, e.g.
// mux.Handle("POST /sql", wh.SQLHandler(token)).
func (w *Warehouse) SQLHandler(token string) http.Handler {
	return bearer.Require(token, "fin warehouse", "see "+TokenPath(w.path), http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			rw.Header().Set("Allow", http.MethodPost)
			http.Error(rw, "POST the query as the request body", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxQuery))
		if err != nil {
			http.Error(rw, "read query: "+err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		query := strings.TrimSpace(string(body))
		if query == "" {
			http.Error(rw, "empty query: POST the SQL as the request body", http.StatusBadRequest)
			return
		}
		rw.Header().Set("Trailer", SQLErrorTrailer)
		out := &lazyCSV{rw: rw}
		if err := w.Query(r.Context(), query, out); err != nil {
			if !out.started {
				http.Error(rw, err.Error(), http.StatusBadRequest)
				return
			}
			rw.Header().Set(SQLErrorTrailer, strings.ReplaceAll(err.Error(), "\n", " "))
		}
	}))
}

// lazyCSV sends the 200 and content type with the first bytes, so an error before any output
// can still be answered as a 400.
type lazyCSV struct {
	rw      http.ResponseWriter
	started bool
}

func (l *lazyCSV) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.rw.Header().Set("Content-Type", "text/csv; charset=utf-8")
		l.rw.WriteHeader(http.StatusOK)
	}
	return l.rw.Write(p)
}

// ErrNoServer: nothing listens at the address a query was sent to (no stack is running there).
var ErrNoServer = errors.New("no running stack")

// PostQuery sends query to a SQLHandler at url with token and copies the CSV answer to out. An
// error that the handler reports after the CSV started (in SQLErrorTrailer) is returned too, so
// a caller never takes a truncated answer for a whole one.
func PostQuery(ctx context.Context, url, token, query string, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(query))
	if err != nil {
		return fmt.Errorf("query %s: %w", url, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := http.DefaultClient.Do(req)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return ErrNoServer
	}
	if err != nil {
		return fmt.Errorf("query the running stack at %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return fmt.Errorf("the running stack at %s answered %s: %s", url, resp.Status, strings.TrimSpace(string(msg)))
	}
	if _, err := io.Copy(out, resp.Body); err != nil {
		return fmt.Errorf("read the answer of %s: %w", url, err)
	}
	if msg := resp.Trailer.Get(SQLErrorTrailer); msg != "" {
		return fmt.Errorf("query failed part-way: %s", msg)
	}
	return nil
}
