package api

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
)

// accountReads answers GET /accounts/{id} from the database. While fewer than limit of its
// queries are in flight a request runs its own query, as it would without this type. A request
// that arrives while limit queries are in flight waits, and is answered together with every
// other request that arrived meanwhile by one query for all their ids (WHERE account_id =
// ANY($1)). That query starts after each of them arrived, so each still sees every write
// committed before it was sent: batching changes the cost of a read, never its answer.
// A limit of 0 or less turns batching off.
type accountReads struct {
	db    bank.Querier
	limit int
	piped *pipedReads

	mu       sync.Mutex
	inFlight int
	waiting  []accountRead
}

type accountRead struct {
	id   uuid.UUID
	done chan accountResult // buffered: a reader that gave up never blocks the batch
}

type accountResult struct {
	account bank.Account
	err     error
}

// batchTimeout bounds a batched query, which runs for several requests and so under none of
// their contexts.
const batchTimeout = 30 * time.Second

func (r *accountReads) get(ctx context.Context, id uuid.UUID) (bank.Account, error) {
	if r.piped != nil {
		return r.piped.get(ctx, id)
	}
	if r.limit <= 0 {
		return bank.GetAccount(ctx, r.db, id)
	}
	r.mu.Lock()
	if r.inFlight < r.limit {
		r.inFlight++
		r.mu.Unlock()
		defer r.release() // even if the read panics: a slot never freed would stall every GET
		return bank.GetAccount(ctx, r.db, id)
	}
	w := accountRead{id: id, done: resultChans.Get().(chan accountResult)}
	r.waiting = append(r.waiting, w)
	r.mu.Unlock()
	return w.await(ctx)
}

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

// release frees a query's slot, or hands it to a batch for the requests waiting. The batch runs
// on its own goroutine so that the request which held the slot is answered now.
func (r *accountReads) release() {
	if batch := r.takeWaiting(); batch != nil {
		go r.serve(batch)
	}
}

// takeWaiting returns the requests waiting, keeping the slot for them, or frees the slot.
func (r *accountReads) takeWaiting() []accountRead {
	r.mu.Lock()
	defer r.mu.Unlock()
	batch := r.waiting
	r.waiting = nil
	if len(batch) == 0 {
		r.inFlight--
	}
	return batch
}

// serve answers batches until no request is waiting.
func (r *accountReads) serve(batch []accountRead) {
	for ; batch != nil; batch = r.takeWaiting() {
		ids := make([]uuid.UUID, len(batch))
		for i, w := range batch {
			ids[i] = w.id
		}
		ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
		found, err := bank.GetAccounts(ctx, r.db, ids)
		cancel()
		answerBatch(batch, found, err)
	}
}
