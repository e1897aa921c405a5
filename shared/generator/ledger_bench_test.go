package generator

import (
	"testing"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
)

// BenchmarkLedgerRow is the CPU cost of drawing one bulk ledger row (rules included), without
// the database: what the bulk load adds to a plain COPY of the same rows.
func BenchmarkLedgerRow(b *testing.B) {
	cfg := Default()
	cfg.Accounts, cfg.Transactions = 20000, b.N+20000
	src := newSource(1, 1)
	currencies := newWeighted(cfg.Currencies)
	accounts := make([]bulkAccount, cfg.Accounts)
	byCurrency := map[string][]int{}
	for i := range accounts {
		accounts[i] = bulkAccount{Account: bank.Account{ID: src.uuidAt(cfg.History.Start), Currency: currencies.pick(src), Status: bank.Active}, opened: cfg.History.Start}
		byCurrency[accounts[i].Currency] = append(byCurrency[accounts[i].Currency], i)
	}
	g := ledgerGen{cfg: cfg, src: src, accounts: accounts, byCurrency: byCurrency, kinds: newWeighted(cfg.TransactionTypes),
		from: cfg.History.Start.Add(24 * time.Hour), to: cfg.History.Start.Add(48 * time.Hour)}
	for i := range len(accounts) {
		if _, err := g.next(i); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := g.next(len(accounts) + i); err != nil {
			b.Fatal(err)
		}
	}
}
