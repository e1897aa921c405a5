package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// lockKeySQL takes a transaction-scoped lock on (principal, key), without waiting.
const lockKeySQL = `SELECT pg_try_advisory_xact_lock(hashtextextended($1 || chr(31) || $2, 7202611253))`

// replayable is an output that can say it is a replay of an earlier response.
type replayable interface{ markReplayed() }

// write describes one write request: its Idempotency-Key (may be empty) and what identifies the
// request, so a key reused for another request is caught.
type write struct {
	key         string
	method      string
	path        string
	body        any // the parsed body; nil when the request has none
	successCode int
}

func (w write) fingerprint() ([]byte, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n", w.method, w.path)
	if w.body != nil {
		// The parsed body, re-encoded: the same request with other spacing or key order matches.
		b, err := json.Marshal(w.body)
		if err != nil {
			return nil, err
		}
		h.Write(b)
	}
	return h.Sum(nil), nil
}

// runWrite runs fn in one database transaction. With an Idempotency-Key it also records fn's
// response under the key in that same transaction, so either both the write and its record
// commit or neither does; a retry with the same key and body gets the recorded response back
// without a second write. Errors are not recorded: a request that failed may be retried.
//
// A concurrent request with the same key holds an advisory lock on it until it commits; a
// request that finds the lock taken answers 409 at once instead of waiting.
func runWrite[O any, PO interface {
	*O
	replayable
}](ctx context.Context, pool *pgxpool.Pool, w write, fn func(*pipedTx) (ending[O], error)) (*O, error) {
	if w.key == "" {
		return inTxEnding(ctx, pool, fn)
	}
	if len(w.key) > 255 {
		return nil, newProblem(422, "invalid_field", "Idempotency-Key must be at most 255 characters", "header.Idempotency-Key")
	}
	hash, err := w.fingerprint()
	if err != nil {
		return nil, fmt.Errorf("fingerprint request: %w", err)
	}
	who := principalOf(ctx).keyOwner()
	return inTx(ctx, pool, func(tx *pipedTx) (*O, error) {
		var locked bool
		if err := tx.QueryRow(ctx, lockKeySQL, who, w.key).Scan(&locked); err != nil {
			return nil, fmt.Errorf("lock idempotency key: %w", err)
		}
		if !locked {
			return nil, newProblem(http.StatusConflict, "idempotency_key_in_flight",
				"a request with this Idempotency-Key is still being processed; retry after it completes", "header.Idempotency-Key")
		}
		var (
			method, path string
			storedHash   []byte
			body         []byte
		)
		err := tx.QueryRow(ctx, `SELECT method, path, request_hash, response_body FROM idempotency_keys
			WHERE principal = $1 AND idem_key = $2 AND expires_at > now()`, who, w.key).Scan(&method, &path, &storedHash, &body)
		switch {
		case err == nil:
			if method != w.method || path != w.path || !bytes.Equal(storedHash, hash) {
				return nil, newProblem(http.StatusUnprocessableEntity, "idempotency_key_reused",
					"this Idempotency-Key was used for a different request ("+method+" "+path+"); use a new key for a new request", "header.Idempotency-Key")
			}
			out := new(O)
			if err := json.Unmarshal(body, out); err != nil {
				return nil, fmt.Errorf("replay idempotency key: %w", err)
			}
			PO(out).markReplayed()
			return out, nil
		case !errors.Is(err, pgx.ErrNoRows):
			return nil, fmt.Errorf("read idempotency key: %w", err)
		}
		end, err := fn(tx)
		if err != nil {
			return nil, err
		}
		// fn's last batch goes without COMMIT: the response is recorded after it.
		out, err := end.send(ctx, tx, false)
		if err != nil {
			return nil, err
		}
		stored, err := json.Marshal(out)
		if err != nil {
			return nil, fmt.Errorf("record idempotent response: %w", err)
		}
		// An expired record of the key is replaced: keys are kept for 24 hours.
		if _, err := tx.Exec(ctx, `INSERT INTO idempotency_keys
			(principal, idem_key, method, path, request_hash, status_code, response_body)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (principal, idem_key) DO UPDATE SET method = EXCLUDED.method, path = EXCLUDED.path,
				request_hash = EXCLUDED.request_hash, status_code = EXCLUDED.status_code,
				response_body = EXCLUDED.response_body, created_at = now(), expires_at = now() + interval '24 hours'`,
			who, w.key, w.method, w.path, hash, w.successCode, stored); err != nil {
			return nil, fmt.Errorf("record idempotent response: %w", err)
		}
		return out, nil
	})
}

// purgeIdempotencyKeys deletes expired keys: the housekeeping schedule of template.yaml runs it
// (Function.Housekeep) in AWS, in `fin up` and in `fin api`.
func purgeIdempotencyKeys(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	tag, err := pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE expires_at <= now()`)
	if err != nil {
		return 0, fmt.Errorf("purge idempotency keys: %w", err)
	}
	return tag.RowsAffected(), nil
}
