package snowflake

import (
	"context"

	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
)

// Literal is literal, for the wire tests.
var Literal = literal

// CopyUnchecked runs the loader's COPY of obj in a transaction of its own, past the key check
// that Load makes first (the escaping of the statement, alone, on the wire), and with no ledger.
// loaded is false when the server skipped the file as loaded before.
func (w *Warehouse) CopyUnchecked(ctx context.Context, obj warehouse.Object, force bool) (n int64, loaded bool, err error) {
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, err
	}
	defer tx.Rollback()
	if n, loaded, err = w.copyInto(ctx, tx, obj, force); err != nil {
		return 0, false, err
	}
	return n, loaded, tx.Commit()
}
