package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fin-orchestrator/fin-orchestrator/shared/retry"
)

// pipedTx is a transaction that spends no round trip of its own on BEGIN or COMMIT: BEGIN is
// pipelined with its first statement and COMMIT with its last batch. A transfer thus takes two
// round trips (BEGIN with the lock query, the writes with COMMIT) where pgx's own Tx takes four.
// It satisfies pgx.Tx, so shared/bank runs in it unchanged. Only inTxEnding pipelines COMMIT,
// after the batch fn ends with (ending): a handler has no way to commit early. Nested
// transactions, COPY, large objects and Prepare are not offered: the API uses none of them.
type pipedTx struct {
	conn  *pgxpool.Conn
	state txState
}

type txState int

const (
	txIdle      txState = iota // nothing sent: BEGIN goes with the first statement
	txOpen                     // BEGIN done, the transaction open on the server
	txCommitted                // COMMIT went with the last batch and succeeded
	txClosed                   // ended otherwise (rolled back, or refused by the server)
)

var _ pgx.Tx = (*pipedTx)(nil)

var errNotOffered = errors.New("not offered by the API's transaction")

// opening sends BEGIN followed by the queued statement as one pipeline, returning the results
// positioned after BEGIN's.
func (t *pipedTx) opening(ctx context.Context, sql string, args []any) (pgx.BatchResults, error) {
	b := &pgx.Batch{}
	b.Queue("begin")
	b.Queue(sql, args...)
	br := t.conn.SendBatch(ctx, b)
	t.state = txOpen
	if _, err := br.Exec(); err != nil {
		br.Close()
		return nil, fmt.Errorf("begin: %w", err)
	}
	return br, nil
}

func (t *pipedTx) usable() error {
	if t.state == txCommitted || t.state == txClosed {
		return pgx.ErrTxClosed
	}
	return nil
}

func (t *pipedTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := t.usable(); err != nil {
		return pgconn.CommandTag{}, err
	}
	if t.state == txOpen {
		return t.conn.Exec(ctx, sql, args...)
	}
	br, err := t.opening(ctx, sql, args)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

func (t *pipedTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := t.usable(); err != nil {
		return nil, err
	}
	if t.state == txOpen {
		return t.conn.Query(ctx, sql, args...)
	}
	br, err := t.opening(ctx, sql, args)
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

func (t *pipedTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := t.Query(ctx, sql, args...)
	return oneRow{rows: rows, err: err}
}

// SendBatch sends b, with BEGIN before it when nothing was sent yet.
func (t *pipedTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return t.sendBatch(ctx, b, false)
}

// sendBatch sends b, with BEGIN before it when nothing was sent yet and, when commits, COMMIT
// after it (only ending.send asks for that).
func (t *pipedTx) sendBatch(ctx context.Context, b *pgx.Batch, commits bool) pgx.BatchResults {
	if err := t.usable(); err != nil {
		return pgx.FailedBatchResults(b, err)
	}
	sent := &pgx.Batch{QueuedQueries: b.QueuedQueries}
	begins := t.state == txIdle
	if begins {
		sent.QueuedQueries = append([]*pgx.QueuedQuery{{SQL: "begin"}}, b.QueuedQueries...)
	}
	if commits {
		sent.QueuedQueries = append(sent.QueuedQueries[:len(sent.QueuedQueries):len(sent.QueuedQueries)], &pgx.QueuedQuery{SQL: "commit"})
	}
	br := t.conn.SendBatch(ctx, sent)
	t.state = txOpen
	if begins {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return pgx.FailedBatchResults(b, fmt.Errorf("begin: %w", err))
		}
	}
	if !commits {
		return br
	}
	return &committingResults{BatchResults: br, tx: t, left: len(b.QueuedQueries)}
}

// Commit commits unless the last batch already did. A transaction that sent nothing has
// nothing to commit.
func (t *pipedTx) Commit(ctx context.Context) error {
	switch t.state {
	case txIdle:
		t.state = txClosed
		return nil
	case txCommitted:
		return nil
	case txClosed:
		return pgx.ErrTxClosed
	}
	tag, err := t.conn.Exec(ctx, "commit")
	t.state = txClosed
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if tag.String() != "COMMIT" {
		return pgx.ErrTxCommitRollback
	}
	t.state = txCommitted
	return nil
}

// Rollback ends an open transaction. It runs even when ctx is done (a client that went away
// between the two round trips), bounded, so the locks are freed at once and the connection
// goes back to the pool idle; should it fail, the pool's Release destroys the connection,
// which is never returned inside a transaction.
func (t *pipedTx) Rollback(ctx context.Context) error {
	if t.state != txOpen {
		t.state = txClosed
		return nil
	}
	t.state = txClosed
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := t.conn.Exec(ctx, "rollback"); err != nil {
		return fmt.Errorf("rollback: %w", err)
	}
	return nil
}

func (t *pipedTx) Begin(context.Context) (pgx.Tx, error) {
	return nil, fmt.Errorf("nested transaction: %w", errNotOffered)
}

func (t *pipedTx) CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error) {
	return 0, fmt.Errorf("copy: %w", errNotOffered)
}

func (t *pipedTx) LargeObjects() pgx.LargeObjects {
	panic("pipedTx: large objects " + errNotOffered.Error())
}

func (t *pipedTx) Prepare(context.Context, string, string) (*pgconn.StatementDescription, error) {
	return nil, fmt.Errorf("prepare: %w", errNotOffered)
}

func (t *pipedTx) Conn() *pgx.Conn { return t.conn.Conn() }

// committingResults are the results of a batch sent with COMMIT after it: closing them reads
// COMMIT's answer, and only "COMMIT" commits (after an error the server skipped it and the
// transaction is left for Rollback).
type committingResults struct {
	pgx.BatchResults
	tx   *pipedTx
	left int // the caller's results not yet read
	done bool
}

func (r *committingResults) Exec() (pgconn.CommandTag, error) {
	r.left--
	return r.BatchResults.Exec()
}

func (r *committingResults) Query() (pgx.Rows, error) {
	r.left--
	return r.BatchResults.Query()
}

func (r *committingResults) QueryRow() pgx.Row {
	r.left--
	return r.BatchResults.QueryRow()
}

func (r *committingResults) Close() error {
	if r.done {
		return r.BatchResults.Close()
	}
	r.done = true
	var first error
	for ; r.left > 0; r.left-- {
		if _, err := r.BatchResults.Exec(); err != nil && first == nil {
			first = err
		}
	}
	tag, err := r.BatchResults.Exec()
	if cerr := r.BatchResults.Close(); err == nil {
		err = cerr
	}
	switch {
	case first != nil:
		err = first
	case err == nil && tag.String() != "COMMIT":
		err = pgx.ErrTxCommitRollback
	}
	if err == nil {
		r.tx.state = txCommitted
	} else if r.tx.conn.Conn().PgConn().TxStatus() == 'I' {
		r.tx.state = txClosed
	}
	return err
}

// batchRows are the rows of the statement that went with BEGIN: closing them closes the batch.
type batchRows struct {
	pgx.Rows
	br  pgx.BatchResults
	err error
}

func (r *batchRows) Close() {
	r.Rows.Close()
	if r.br != nil {
		r.err = r.br.Close()
		r.br = nil
	}
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

// oneRow is QueryRow's answer: the first row, pgx.ErrNoRows without one.
type oneRow struct {
	rows pgx.Rows
	err  error
}

func (r oneRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

// ending is how a transaction's fn ends: with its answer (done), or with its last batch and how
// to read the answer from that batch's results (then). inTx, not fn, sends that batch, with
// COMMIT in the same round trip: fn can neither commit early nor run anything after the commit,
// and read gets the results alone, not the transaction.
type ending[O any] struct {
	out   *O
	batch *pgx.Batch
	read  func(pgx.BatchResults) (*O, error)
}

// done ends a transaction with out: inTx commits in a round trip of its own.
func done[O any](out *O) ending[O] { return ending[O]{out: out} }

// then ends a transaction with b, whose results read turns into the answer. read only decodes:
// every check that can refuse the request belongs before, in fn.
func then[O any](b *pgx.Batch, read func(pgx.BatchResults) (*O, error)) ending[O] {
	return ending[O]{batch: b, read: read}
}

// send sends e's batch in tx (with COMMIT after it when commits) and reads the answer.
func (e ending[O]) send(ctx context.Context, tx *pipedTx, commits bool) (*O, error) {
	if e.batch == nil {
		return e.out, nil
	}
	br := tx.sendBatch(ctx, e.batch, commits)
	out, err := e.read(br)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil && tx.state == txCommitted {
		// Postgres took every statement, so it committed; only decoding its answer failed.
		return nil, fmt.Errorf("transaction committed, its answer unread: %w", err)
	}
	return out, err
}

// inTx runs fn in a pipedTx and commits it in a round trip of its own (inTxEnding, for fn's
// answer alone).
func inTx[O any](ctx context.Context, pool *pgxpool.Pool, fn func(*pipedTx) (*O, error)) (*O, error) {
	return inTxEnding(ctx, pool, valued(fn))
}

// valued is fn ending with its answer (done).
func valued[O any](fn func(*pipedTx) (*O, error)) func(*pipedTx) (ending[O], error) {
	return func(tx *pipedTx) (ending[O], error) {
		out, err := fn(tx)
		return done(out), err
	}
}

// inTxEnding runs fn in a pipedTx and commits it, with fn's last batch when it ends with one,
// retrying the whole transaction when Postgres aborts it for a deadlock or a serialization
// failure, so neither ever reaches a client.
func inTxEnding[O any](ctx context.Context, pool *pgxpool.Pool, fn func(*pipedTx) (ending[O], error)) (*O, error) {
	var out *O
	err := retry.Do(ctx, txRetry, func(ctx context.Context) (err error) {
		out, err = once(ctx, pool, fn)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// txRetry tries a transaction again only when Postgres aborted it for a deadlock or a
// serialization failure: any other error is the request's.
var txRetry = retry.Policy{Attempts: 5, Backoff: retry.Backoff{First: 10 * time.Millisecond},
	Again: func(_ int, _ time.Duration, err error) bool {
		var pg *pgconn.PgError
		return errors.As(err, &pg) && (pg.Code == "40P01" || pg.Code == "40001")
	}}

// once runs fn in one transaction on a connection of its own, rolling back on any error.
func once[O any](ctx context.Context, pool *pgxpool.Pool, fn func(*pipedTx) (ending[O], error)) (*O, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire a connection: %w", err)
	}
	defer conn.Release()
	tx := &pipedTx{conn: conn}
	end, err := fn(tx)
	var out *O
	if err == nil {
		out, err = end.send(ctx, tx, true)
	}
	if err == nil {
		err = tx.Commit(ctx) // nothing left to do when the batch committed
	}
	if err != nil {
		tx.Rollback(ctx)
		return nil, err
	}
	return out, nil
}
