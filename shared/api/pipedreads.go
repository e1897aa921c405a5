package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"runtime"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
)

// pipedReads answers GET /accounts/{id} through one connection of its own in pipeline mode
// (fin api; off in Lambda, where one request at a time never waits). A batch (every request
// waiting, one query WHERE account_id = ANY($1), Sync after it) is sent while up to depth-1
// earlier batches are still unanswered, so Postgres goes from one batch to the next without
// waiting for the API to read an answer and send the next question, and the API answers HTTP
// while Postgres works. A sender goroutine writes the batches, a reader goroutine reads the
// answers in order; neither waits for the other.
//
// The sender takes a batch only after letting every other runnable goroutine run
// (runtime.Gosched): the requests the API is reading at that moment join the batch instead of
// waiting for the next one. Sent at once, batches held 2-3 GETs and Postgres spent about twice
// its CPU per GET; after the yield, 6-9 (docs/api.md, Performance). Reads that arrived with the
// pipeline full do not wait for that yield: they gathered while the batches ahead ran, and the
// yield put them behind every response of the batch just answered (from that answer to their
// batch's send, p50 136-188 us in Go execution traces at a load average of 15; 52 us without
// it), Postgres idle once it ended the batch still in flight.
//
// Each request is sent after it arrived, and each batch runs as its own implicit transaction, so
// it sees every write committed before it was sent: batching changes the cost of a read, never
// its answer. A failed connection fails the batches on it (the fast GET then falls through to
// Huma, which reads again) and the next batch opens another.
type pipedReads struct {
	pool  *pgxpool.Pool
	depth int // batches sent and not yet answered, at most

	mu      sync.Mutex
	waiting []accountRead
	held    bool      // a read of waiting arrived with the pipeline full (sent == depth)
	sent    int       // batches taken for sending and not yet answered
	batches int       // batches taken for sending so far (tests)
	pipe    *readPipe // nil until the first batch, and after a failure
	closed  bool      // the server is stopping: new reads use the pool, the pipe closes when idle
	wake    chan struct{}

	wrap  func(net.Conn) net.Conn // tests: sees the connection's bytes (nil: none)
	yield func()                  // runtime.Gosched (tests count the yields)
}

// readPipe is one hijacked connection and the batches sent on it, in order.
type readPipe struct {
	conn     net.Conn
	pid      uint32 // its backend's (tests end it)
	frontend *pgproto3.Frontend
	typeMap  *pgtype.Map
	stmt     *pgconn.StatementDescription
	formats  []int16 // each result column's format, as pgx asks for it
	inFlight chan []accountRead
	row      rawRow // the reader's, for every row of every batch: its scan plans are kept
}

// accountReads answers GET /accounts/{id}: through the pipelined batches when the server has
// them (fin api), else each read its own query through the pool (Lambda and fin up, one
// request at a time, where a batch would only ever hold one read).
type accountReads struct {
	db    bank.Querier
	piped *pipedReads
}

func (r *accountReads) get(ctx context.Context, id uuid.UUID) (bank.Account, error) {
	if r.piped != nil {
		return r.piped.get(ctx, id)
	}
	return bank.GetAccount(ctx, r.db, id)
}

// accountRead is one GET waiting for its batch.
type accountRead struct {
	id   uuid.UUID
	done chan accountResult // buffered: a reader that gave up never blocks the batch
}

type accountResult struct {
	account bank.Account
	err     error
}

// batchTimeout bounds a batch, which runs for several requests and so under none of their
// contexts.
const batchTimeout = 30 * time.Second

// await waits for w's batch to answer it, or for ctx.
func (w accountRead) await(ctx context.Context) (bank.Account, error) {
	select {
	case res := <-w.done:
		resultChans.Put(w.done) // empty again, and no batch holds it any more
		return res.account, res.err
	case <-ctx.Done():
		// Not put back: the batch still holds it and will send to it.
		return bank.Account{}, fmt.Errorf("read account %s: %w", w.id, ctx.Err())
	}
}

// answerBatch sends each read of batch its account from found, ErrNotFound, or err (which
// already says what was read).
func answerBatch(batch []accountRead, found map[uuid.UUID]bank.Account, err error) {
	for _, w := range batch {
		switch a, ok := found[w.id]; {
		case err != nil:
			w.done <- accountResult{err: err}
		case !ok:
			w.done <- accountResult{err: fmt.Errorf("account %s: %w", w.id, bank.ErrNotFound)}
		default:
			w.done <- accountResult{account: a}
		}
	}
}

// resultChans holds the empty channels of answered reads, so that a waiting GET does not
// allocate one each time.
var resultChans = sync.Pool{New: func() any { return make(chan accountResult, 1) }}

const pipedStatement = "fin_get_accounts"

// errPipeLost answers the batches sent on a connection that failed before their answer.
var errPipeLost = errors.New("read accounts: the connection was lost")

// newPipedReads starts the sender; when ctx ends, reads already waiting are still answered, later
// ones go through the pool, and the connection closes once idle.
func newPipedReads(ctx context.Context, pool *pgxpool.Pool, depth int, wrap func(net.Conn) net.Conn) *pipedReads {
	r := &pipedReads{pool: pool, depth: depth, wake: make(chan struct{}, 1), wrap: wrap, yield: runtime.Gosched}
	go r.send()
	go func() {
		<-ctx.Done()
		r.mu.Lock()
		r.closed = true
		r.closeIdleLocked()
		r.signal()
		r.mu.Unlock()
	}()
	return r
}

func (r *pipedReads) get(ctx context.Context, id uuid.UUID) (bank.Account, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return bank.GetAccount(ctx, r.pool, id)
	}
	w := accountRead{id: id, done: resultChans.Get().(chan accountResult)}
	r.waiting = append(r.waiting, w)
	if r.sent < r.depth {
		r.signal()
	} else {
		r.held = true
	}
	r.mu.Unlock()
	return w.await(ctx)
}

// signal wakes the sender (r.mu held, or not: it never blocks).
func (r *pipedReads) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// send writes batches until the server stops and nothing waits.
func (r *pipedReads) send() {
	var buf []byte
	for range r.wake {
		r.mu.Lock()
		held := r.held
		r.mu.Unlock()
		if !held {
			r.yield() // let the requests being read now join this batch
		}
		r.mu.Lock()
		if r.closed && len(r.waiting) == 0 {
			r.mu.Unlock()
			return
		}
		if r.sent >= r.depth || len(r.waiting) == 0 {
			r.mu.Unlock()
			continue
		}
		batch := r.waiting
		r.waiting, r.held = nil, false
		r.sent++
		r.batches++
		p := r.pipe
		r.mu.Unlock()
		var err error
		if p == nil {
			p, err = r.open()
		}
		if err == nil {
			buf, err = p.encode(buf[:0], batch)
		}
		r.mu.Lock()
		if err == nil && r.pipe != p {
			err = errPipeLost // p failed meanwhile, and its reader is gone
		}
		if err != nil {
			r.sent--
			answerBatch(batch, nil, err)
			r.signalIfWaitingLocked()
			r.mu.Unlock()
			continue
		}
		p.inFlight <- batch // never blocks: it holds at most depth batches
		r.mu.Unlock()
		if _, err := p.conn.Write(buf); err != nil {
			_ = p.conn.Close() // the reader fails what was sent on it
		}
		r.mu.Lock()
		r.signalIfWaitingLocked()
		r.mu.Unlock()
	}
}

// signalIfWaitingLocked wakes the sender if a batch could go now.
func (r *pipedReads) signalIfWaitingLocked() {
	if r.sent < r.depth && len(r.waiting) > 0 {
		r.signal()
	}
}

// closeIdleLocked closes the pipe once the server stops and no batch is left.
func (r *pipedReads) closeIdleLocked() {
	if r.closed && r.sent == 0 && len(r.waiting) == 0 && r.pipe != nil {
		r.dropLocked(r.pipe, errPipeLost)
	}
}

// dropLocked retires p: no batch is sent on it any more, the ones sent and unanswered fail with
// err, and the next batch opens another connection.
func (r *pipedReads) dropLocked(p *readPipe, err error) {
	if r.pipe != p {
		return
	}
	r.pipe = nil
	close(p.inFlight)
	_ = p.conn.Close()
	for batch := range p.inFlight {
		r.sent--
		answerBatch(batch, nil, err)
	}
	r.signalIfWaitingLocked()
}

// open takes a connection from the pool for good, prepares the query on it and starts its reader.
func (r *pipedReads) open() (*readPipe, error) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	pc, err := r.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("read accounts: connect: %w", err)
	}
	c := pc.Hijack()
	sd, err := c.Prepare(ctx, pipedStatement, bank.GetAccountsSQL)
	if err != nil {
		_ = c.Close(ctx)
		return nil, fmt.Errorf("read accounts: prepare: %w", err)
	}
	p := &readPipe{typeMap: c.TypeMap(), stmt: sd, inFlight: make(chan []accountRead, r.depth)}
	for _, f := range sd.Fields {
		p.formats = append(p.formats, p.typeMap.FormatCodeForOID(f.DataTypeOID))
	}
	p.row = rawRow{m: p.typeMap, fields: sd.Fields, formats: p.formats}
	hc, err := c.PgConn().Hijack()
	if err != nil {
		_ = c.Close(ctx)
		return nil, fmt.Errorf("read accounts: %w", err)
	}
	p.conn, p.pid, p.frontend = hc.Conn, hc.PID, hc.Frontend
	if r.wrap != nil {
		// Idle after Prepare's ReadyForQuery, so hc.Frontend holds nothing unread.
		p.conn = r.wrap(p.conn)
		p.frontend = pgproto3.NewFrontend(p.conn, p.conn)
	}
	r.mu.Lock()
	r.pipe = p
	r.mu.Unlock()
	go r.read(p)
	return p, nil
}

// encode appends the batch's Bind, Execute and Sync to buf.
func (p *readPipe) encode(buf []byte, batch []accountRead) ([]byte, error) {
	ids := make([]uuid.UUID, len(batch))
	for i, w := range batch {
		ids[i] = w.id
	}
	param, err := p.typeMap.Encode(p.stmt.ParamOIDs[0], pgtype.BinaryFormatCode, ids, nil)
	if err != nil {
		return buf, fmt.Errorf("read %d accounts: %w", len(ids), err)
	}
	bind := pgproto3.Bind{PreparedStatement: pipedStatement, ParameterFormatCodes: []int16{pgtype.BinaryFormatCode},
		Parameters: [][]byte{param}, ResultFormatCodes: p.formats}
	if buf, err = bind.Encode(buf); err != nil {
		return buf, fmt.Errorf("read %d accounts: %w", len(ids), err)
	}
	buf, _ = (&pgproto3.Execute{}).Encode(buf)
	buf, _ = (&pgproto3.Sync{}).Encode(buf)
	return buf, nil
}

// read answers p's batches in order until p fails or is closed.
func (r *pipedReads) read(p *readPipe) {
	found := make(map[uuid.UUID]bank.Account)
	for batch := range p.inFlight {
		clear(found)
		qerr, err := p.readBatch(found)
		if err != nil {
			answerBatch(batch, nil, err)
			r.mu.Lock()
			r.sent--
			r.dropLocked(p, errPipeLost)
			r.mu.Unlock()
			continue
		}
		// The slot is freed, and the sender woken, before the batch's reads are answered: reads
		// held back by the full pipeline then go to Postgres before this batch's responses are
		// written, while Postgres still runs the batch behind this one.
		r.mu.Lock()
		r.sent--
		r.signalIfWaitingLocked()
		r.closeIdleLocked()
		r.mu.Unlock()
		answerBatch(batch, found, qerr)
	}
}

// readBatch reads one batch's answer up to its ReadyForQuery: qerr is the query's own error
// (the connection goes on), err the connection's.
func (p *readPipe) readBatch(found map[uuid.UUID]bank.Account) (qerr, err error) {
	if err := p.conn.SetReadDeadline(time.Now().Add(batchTimeout)); err != nil {
		return nil, fmt.Errorf("read accounts: %w", err)
	}
	row := &p.row
	for {
		msg, err := p.frontend.Receive()
		if err != nil {
			return nil, fmt.Errorf("read accounts: %w", err)
		}
		switch msg := msg.(type) {
		case *pgproto3.DataRow:
			if qerr != nil {
				continue
			}
			row.values = msg.Values
			a, err := bank.ScanAccount(row)
			if err != nil {
				qerr = fmt.Errorf("read accounts: %w", err)
				continue
			}
			found[a.ID] = a
		case *pgproto3.ErrorResponse:
			qerr = fmt.Errorf("read accounts: %w", pgconn.ErrorResponseToPgError(msg))
		case *pgproto3.ReadyForQuery:
			return qerr, nil
		case *pgproto3.BindComplete, *pgproto3.CommandComplete, *pgproto3.ParameterStatus,
			*pgproto3.NoticeResponse, *pgproto3.NotificationResponse:
		default:
			return nil, fmt.Errorf("read accounts: unexpected %T", msg)
		}
	}
}

// rawRow is a DataRow as pgx.Row, decoded as pgx decodes a row (pgx's rows.Scan): each column's
// scan plan is found once and kept while its destination's type stays the same. Looking the plan
// up again for every value (pgtype.Map.Scan) cost a map lookup and an interface check per column,
// ten a GET.
type rawRow struct {
	m       *pgtype.Map
	fields  []pgconn.FieldDescription
	formats []int16
	values  [][]byte
	plans   []pgtype.ScanPlan
	types   []reflect.Type // each plan's destination type
}

func (row *rawRow) Scan(dest ...any) error {
	if len(dest) != len(row.values) || len(dest) != len(row.fields) {
		return errors.New("scan: column count differs")
	}
	if len(row.plans) != len(dest) {
		row.plans, row.types = make([]pgtype.ScanPlan, len(dest)), make([]reflect.Type, len(dest))
	}
	for i, d := range dest {
		if t := reflect.TypeOf(d); row.plans[i] == nil || row.types[i] != t {
			row.plans[i], row.types[i] = row.m.PlanScan(row.fields[i].DataTypeOID, row.formats[i], d), t
		}
		if err := row.plans[i].Scan(row.values[i], d); err != nil {
			return fmt.Errorf("scan %s: %w", row.fields[i].Name, err)
		}
	}
	return nil
}
