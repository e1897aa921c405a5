package capture

import (
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/retry"
)

// SetChunkReadHook sets chunkReadHook for a test and returns what restores it.
func SetChunkReadHook(f func(table string, after []string) func()) (restore func()) {
	old := chunkReadHook
	chunkReadHook = f
	return func() { chunkReadHook = old }
}

// SetChunkReadingHook sets chunkReadingHook for a test and returns what restores it.
func SetChunkReadingHook(f func(table string, after []string)) (restore func()) {
	old := chunkReadingHook
	chunkReadingHook = f
	return func() { chunkReadingHook = old }
}

// SetLowWatermarkHook sets lowWatermarkHook for a test and returns what restores it.
func SetLowWatermarkHook(f func(table string, after []string)) (restore func()) {
	old := lowWatermarkHook
	lowWatermarkHook = f
	return func() { lowWatermarkHook = old }
}

// SetStreamHoldHook sets streamHoldHook for a test and returns what restores it.
func SetStreamHoldHook(f func() bool) (restore func()) {
	old := streamHoldHook
	streamHoldHook = f
	return func() { streamHoldHook = old }
}

// SetFinalStatusFor sets how long the capture's way out waits, for a test.
func SetFinalStatusFor(d time.Duration) (restore func()) {
	old := finalStatusFor
	finalStatusFor = d
	return func() { finalStatusFor = old }
}

// MaxPending is maxPending, the chunks a snapshot holds at most.
const MaxPending = maxPending

// SetHighWatermarkHook sets highWatermarkHook for a test and returns what restores it.
func SetHighWatermarkHook(f func(table string)) (restore func()) {
	old := highWatermarkHook
	highWatermarkHook = f
	return func() { highWatermarkHook = old }
}

// SetSlotBusyFor sets how long a start waits for the slot's previous consumer, for a test.
func SetSlotBusyFor(d time.Duration) (restore func()) {
	old := slotBusyFor
	slotBusyFor = d
	return func() { slotBusyFor = old }
}

// SetMaxHeld sets maxHeld, the transactions a window waits for before it opens at the slot's
// restart_lsn (0: the server's bound, heldBoundSQL), for a test; set it before the capture
// starts, restore it after it stopped.
func SetMaxHeld(n int) (restore func()) {
	old := maxHeld
	maxHeld = n
	return func() { maxHeld = old }
}

// setStoreCall sets the manifest store's per-call timeout, attempts and first backoff, for a
// test, and returns what restores them.
func setStoreCall(timeout time.Duration, attempts int, backoff time.Duration) (restore func()) {
	old := storeCall
	storeCall = retry.Policy{Attempts: attempts, Timeout: timeout, Backoff: retry.Backoff{First: backoff}}
	return func() { storeCall = old }
}
