package bank

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/google/uuid"
	pgxdecimal "github.com/jackc/pgx-shopspring-decimal"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/shopspring/decimal"

	"github.com/fin-orchestrator/fin-orchestrator/shared/money"
)

// Posting asks for one ledger entry. For a transfer, RelatedAccountID is the destination.
// ID may be set to choose the transaction's id (the generator does, for determinism); zero lets
// the database choose.
type Posting struct {
	ID               uuid.UUID
	AccountID        uuid.UUID
	Type             TransactionType
	Amount           decimal.Decimal
	RelatedAccountID *uuid.UUID
	Description      *string
	Category         *string
}

const transactionColumns = `transaction_id, account_id, transaction_type, amount, currency,
	related_account_id, status, description, category, reverses_transaction_id,
	created_at, updated_at, version`

func scanTransaction(row pgx.Row) (Transaction, error) {
	// As scanAccount: types pgx decodes from the binary row. A decimal.Decimal would be read
	// through sql.Scanner (the numeric formatted as text, then parsed), a named string type
	// through reflection, a pointer to a pointer through reflection too.
	var (
		t                     Transaction
		typ, status           string
		amount                pgxdecimal.Decimal
		related, reverses     pgtype.UUID
		description, category pgtype.Text
	)
	err := row.Scan(&t.ID, &t.AccountID, &typ, &amount, &t.Currency, &related,
		&status, &description, &category, &reverses, &t.CreatedAt, &t.UpdatedAt, &t.Version)
	t.Type, t.Status, t.Amount = TransactionType(typ), TransactionStatus(status), decimal.Decimal(amount)
	t.RelatedAccountID, t.ReversesID = optionalID(related), optionalID(reverses)
	t.Description, t.Category = optionalText(description), optionalText(category)
	return t, err
}

func optionalID(v pgtype.UUID) *uuid.UUID {
	if !v.Valid {
		return nil
	}
	id := uuid.UUID(v.Bytes)
	return &id
}

func optionalText(v pgtype.Text) *string {
	if !v.Valid {
		return nil
	}
	return &v.String
}

// Post validates and books p inside tx: it locks the accounts involved in id order (so two
// transfers between the same accounts in opposite directions cannot deadlock), checks that they
// are active, share a currency and hold the funds, moves the balances and inserts the ledger row.
func Post(ctx context.Context, tx pgx.Tx, p Posting) (Transaction, error) {
	return post(ctx, tx, p, nil)
}

// Writes are a posting decided but not yet written: the balance moves and the ledger row as
// one batch, to send in the transaction that locked the accounts, and how to read its results.
// A caller that sends it as its transaction's last statement may pipeline COMMIT after it.
type Writes struct {
	Batch *pgx.Batch
	// Currency is the posting's, its account's: known before anything is written.
	Currency string
	accounts []uuid.UUID
}

// Prepare does everything Post does but the writes: it checks p, locks its accounts and decides
// under the lock, and returns the writes to send (Post sends them at once).
func Prepare(ctx context.Context, tx pgx.Tx, p Posting) (Writes, error) {
	return prepare(ctx, tx, p, nil)
}

func post(ctx context.Context, tx pgx.Tx, p Posting, reverses *uuid.UUID) (Transaction, error) {
	w, err := prepare(ctx, tx, p, reverses)
	if err != nil {
		return Transaction{}, err
	}
	results := tx.SendBatch(ctx, w.Batch)
	defer results.Close()
	return w.Read(results)
}

func prepare(ctx context.Context, tx pgx.Tx, p Posting, reverses *uuid.UUID) (Writes, error) {
	if err := checkShape(p); err != nil {
		return Writes{}, err
	}
	ids := []uuid.UUID{p.AccountID}
	if p.Type == Transfer {
		ids = append(ids, *p.RelatedAccountID)
	}
	accounts, err := lockAccounts(ctx, tx, ids)
	if err != nil {
		return Writes{}, err
	}
	src := accounts[p.AccountID]
	var dst Account
	if p.Type == Transfer {
		dst = accounts[*p.RelatedAccountID]
	}
	after, err := Decide(p, src, dst)
	if err != nil {
		return Writes{}, err
	}
	// The rows are locked, so the balances Decide computed are the ones to write.
	balance := map[uuid.UUID]decimal.Decimal{p.AccountID: after.From}
	if p.Type == Transfer {
		balance[dst.ID] = after.To
	}
	var id any
	if p.ID != uuid.Nil {
		id = p.ID
	}
	// The balance moves and the ledger row go to Postgres in one round trip (a pipeline): the
	// rows are locked and every check is done, so none of them waits on another's answer.
	batch := &pgx.Batch{}
	for _, acct := range ids {
		batch.Queue("UPDATE accounts SET balance = $2 WHERE account_id = $1", acct, balance[acct])
	}
	batch.Queue(`INSERT INTO transactions
		(transaction_id, account_id, transaction_type, amount, currency, related_account_id,
		 description, category, reverses_transaction_id)
		VALUES (coalesce($1, uuidv7()), $2, $3, $4, $5, $6, $7, $8, $9)
		RETURNING `+transactionColumns,
		id, p.AccountID, p.Type, p.Amount, src.Currency, p.RelatedAccountID, p.Description, p.Category, reverses)
	return Writes{Batch: batch, Currency: src.Currency, accounts: ids}, nil
}

// Read reads the results of w's batch and closes them. The first error aborts the transaction
// and the rest fail after it, so it is the one reported.
func (w Writes) Read(results pgx.BatchResults) (Transaction, error) {
	for _, acct := range w.accounts {
		if _, err := results.Exec(); err != nil {
			return Transaction{}, fmt.Errorf("update balance of %s: %w", acct, Translate(err))
		}
	}
	t, err := scanTransaction(results.QueryRow())
	if err != nil {
		return Transaction{}, fmt.Errorf("insert transaction: %w", Translate(err))
	}
	if err := results.Close(); err != nil {
		return Transaction{}, fmt.Errorf("insert transaction: %w", Translate(err))
	}
	return t, nil
}

// Balances are what a posting leaves on the accounts it moves: From on its account, To on the
// destination of a transfer (zero for other postings).
type Balances struct{ From, To decimal.Decimal }

// checkShape checks p itself: its type, its amount, a destination for a transfer and only then.
func checkShape(p Posting) error {
	if !p.Type.Valid() {
		return fmt.Errorf("transaction_type %q: %w", p.Type, ErrInvalid)
	}
	if err := money.CheckAmount(p.Amount); err != nil {
		return fmt.Errorf("amount %s %w: %w", p.Amount, err, ErrInvalid)
	}
	switch {
	case p.Type == Transfer && p.RelatedAccountID == nil:
		return fmt.Errorf("related_account_id is required for a transfer: %w", ErrInvalid)
	case p.Type == Transfer && *p.RelatedAccountID == p.AccountID:
		return fmt.Errorf("transfer %s to itself: %w", p.AccountID, ErrSameAccount)
	case p.Type != Transfer && p.RelatedAccountID != nil:
		return fmt.Errorf("related_account_id is only for transfers: %w", ErrInvalid)
	}
	return nil
}

// Decide holds the money rules of a posting: given the accounts p names as they stand (from is
// p.AccountID's; to a transfer's destination, ignored otherwise), it says whether p is allowed -
// a well-formed posting, the accounts active, one currency, funds for what leaves - and the
// balances it leaves. Post decides through it on rows read under lock; the bulk generator on its
// simulated accounts, so both allow exactly the same postings with the same results.
func Decide(p Posting, from, to Account) (Balances, error) {
	if err := checkShape(p); err != nil {
		return Balances{}, err
	}
	if from.ID != p.AccountID || p.Type == Transfer && to.ID != *p.RelatedAccountID {
		return Balances{}, fmt.Errorf("posting on %s decided against account %s: %w", p.AccountID, from.ID, ErrInvalid)
	}
	if from.Status != Active {
		return Balances{}, fmt.Errorf("account %s: %w", from.ID, ErrAccountInactive)
	}
	if p.Type == Transfer && to.Status != Active {
		return Balances{}, fmt.Errorf("account %s: %w", to.ID, ErrAccountInactive)
	}
	switch p.Type {
	case Deposit:
		return Balances{From: from.Balance.Add(p.Amount)}, nil
	case Transfer:
		if to.Currency != from.Currency {
			return Balances{}, fmt.Errorf("transfer from %s (%s) to %s (%s): %w",
				from.ID, from.Currency, to.ID, to.Currency, ErrCurrencyMismatch)
		}
	}
	if from.Balance.LessThan(p.Amount) {
		return Balances{}, fmt.Errorf("account %s holds %s %s, %s needed: %w",
			from.ID, money.Format(from.Balance), from.Currency, money.Format(p.Amount), ErrInsufficientFunds)
	}
	b := Balances{From: from.Balance.Sub(p.Amount)}
	if p.Type == Transfer {
		b.To = to.Balance.Add(p.Amount)
	}
	return b, nil
}

// lockAccounts takes row locks on ids in ascending id order and returns the locked rows.
func lockAccounts(ctx context.Context, tx pgx.Tx, ids []uuid.UUID) (map[uuid.UUID]Account, error) {
	sorted := append([]uuid.UUID(nil), ids...)
	sort.Slice(sorted, func(i, j int) bool { return bytes.Compare(sorted[i][:], sorted[j][:]) < 0 })
	// The lock is taken as each row leaves the sort, so rows are locked in id order.
	rows, err := tx.Query(ctx, `SELECT `+accountColumns+` FROM accounts
		WHERE account_id = ANY($1) ORDER BY account_id FOR UPDATE`, sorted)
	if err != nil {
		return nil, fmt.Errorf("lock accounts: %w", err)
	}
	out := make(map[uuid.UUID]Account, len(ids))
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("lock accounts: %w", err)
		}
		out[a.ID] = a
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lock accounts: %w", err)
	}
	for _, id := range ids {
		if _, ok := out[id]; !ok {
			return nil, fmt.Errorf("account %s: %w", id, ErrNotFound)
		}
	}
	return out, nil
}

// Reverse undoes a completed transaction inside tx: it posts the compensating entry (a
// withdrawal for a deposit, a deposit for a withdrawal, the opposite transfer for a transfer),
// marks the original REVERSED, and returns both. Nothing is deleted.
func Reverse(ctx context.Context, tx pgx.Tx, id uuid.UUID, reversalID uuid.UUID) (original, reversal Transaction, err error) {
	original, err = scanTransaction(tx.QueryRow(ctx,
		`SELECT `+transactionColumns+` FROM transactions WHERE transaction_id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Transaction{}, Transaction{}, fmt.Errorf("transaction %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Transaction{}, Transaction{}, fmt.Errorf("read transaction %s: %w", id, err)
	}
	if original.Status == Reversed {
		return Transaction{}, Transaction{}, fmt.Errorf("transaction %s: %w", id, ErrAlreadyReversed)
	}
	if original.ReversesID != nil {
		return Transaction{}, Transaction{}, fmt.Errorf("transaction %s reverses %s: %w", id, *original.ReversesID, ErrReversalOfReversal)
	}
	desc := "Reversal of " + id.String()
	comp := Posting{ID: reversalID, AccountID: original.AccountID, Amount: original.Amount, Description: &desc, Category: original.Category}
	switch original.Type {
	case Deposit:
		comp.Type = Withdrawal
	case Withdrawal:
		comp.Type = Deposit
	case Transfer:
		comp.Type = Transfer
		comp.AccountID = *original.RelatedAccountID
		comp.RelatedAccountID = &original.AccountID
	}
	reversal, err = post(ctx, tx, comp, &original.ID)
	if err != nil {
		return Transaction{}, Transaction{}, fmt.Errorf("reverse %s: %w", id, err)
	}
	original, err = scanTransaction(tx.QueryRow(ctx, `UPDATE transactions SET status = 'REVERSED'
		WHERE transaction_id = $1 RETURNING `+transactionColumns, id))
	if err != nil {
		return Transaction{}, Transaction{}, fmt.Errorf("mark %s reversed: %w", id, Translate(err))
	}
	return original, reversal, nil
}

// GetTransaction reads one transaction.
func GetTransaction(ctx context.Context, q Querier, id uuid.UUID) (Transaction, error) {
	t, err := scanTransaction(q.QueryRow(ctx, `SELECT `+transactionColumns+` FROM transactions WHERE transaction_id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Transaction{}, fmt.Errorf("transaction %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Transaction{}, fmt.Errorf("read transaction %s: %w", id, err)
	}
	return t, nil
}

// Description holds the descriptive fields of a posted transaction, the only ones that may
// change after posting; nil clears a field.
type Description struct {
	Description *string
	Category    *string
}

// Describe replaces the descriptive fields of a transaction. When expectedVersion is not nil the
// row must still be at that version. Amounts, accounts and type never change: see Reverse.
func Describe(ctx context.Context, q Querier, id uuid.UUID, d Description, expectedVersion *int64) (Transaction, error) {
	t, err := scanTransaction(q.QueryRow(ctx, `UPDATE transactions SET description = $2, category = $3
		WHERE transaction_id = $1 AND ($4::bigint IS NULL OR version = $4)
		RETURNING `+transactionColumns, id, d.Description, d.Category, expectedVersion))
	if errors.Is(err, pgx.ErrNoRows) {
		if _, gerr := GetTransaction(ctx, q, id); gerr != nil {
			return Transaction{}, gerr
		}
		return Transaction{}, fmt.Errorf("transaction %s: %w", id, ErrVersionMismatch)
	}
	if err != nil {
		return Transaction{}, fmt.Errorf("describe transaction %s: %w", id, Translate(err))
	}
	return t, nil
}
