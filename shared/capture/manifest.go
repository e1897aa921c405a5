package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
	"github.com/fin-orchestrator/fin-orchestrator/shared/retry"
)

// ManifestStore keeps the capture's manifest next to the data the capture delivered (the bronze
// bucket, under ManifestKey), so the record of what the destination holds lives and dies with
// that data. Read returns (nil, nil) when there is no manifest.
type ManifestStore interface {
	Read(ctx context.Context, key string) ([]byte, error)
	Write(ctx context.Context, key string, body []byte) error
}

// ManifestKey is where the manifest of a topic prefix lives in its destination. One destination
// namespace (the topics <prefix>.*, and the lake they land in) takes history from one source.
func ManifestKey(topicPrefix string) string { return "_manifest/capture/" + topicPrefix + ".json" }

// SourceID names the database a capture reads.
type SourceID struct {
	SystemID    string `json:"system_identifier"` // the cluster's, from IDENTIFY_SYSTEM
	Database    string `json:"database"`
	Slot        string `json:"slot"`
	Publication string `json:"publication"`
}

// Manifest is what the destination holds from its source.
type Manifest struct {
	Source SourceID `json:"source"`
	// Snapshots are the tables whose snapshot was completely delivered, by qualified name.
	Snapshots map[string]SnapshotRecord `json:"snapshots"`
	// Incremental is the durable position of a running incremental snapshot (nil when none).
	Incremental *IncrementalPosition `json:"incremental,omitempty"`
	// Signals are the ids of the last execute-snapshot signals taken (the slot re-delivers them
	// after a restart; a signal is acted on once).
	Signals []string `json:"signals,omitempty"`
	// Delivered is how far the changes this destination received reach: the slot is confirmed
	// only up to a position already written here, so slot <= Delivered holds for a destination
	// that received everything, and a slot further on was consumed into another destination.
	Delivered string `json:"delivered_lsn,omitempty"`
	// HeldWindows are the snapshot windows of completed tables still held for transactions open
	// across their snapshots, lowered to the slot's restart_lsn at their close: a capture that
	// stops before it can write them as they are writes these when it starts (window.go).
	HeldWindows []bronze.SnapshotWindow `json:"held_windows,omitempty"`
}

// SnapshotRecord is one completed table snapshot.
type SnapshotRecord struct {
	Kind        string    `json:"kind"` // initial (the slot's exported snapshot) or incremental
	CompletedAt time.Time `json:"completed_at"`
	LSN         string    `json:"lsn"` // the position its last row was emitted at
}

// IncrementalPosition is where an incremental snapshot stands: the tables left (the first one is
// being read) and the primary key of the last row of the first table whose chunk was delivered.
type IncrementalPosition struct {
	ID      string   `json:"id"`
	Tables  []string `json:"tables"`
	LastKey []string `json:"last_key,omitempty"` // text forms, primary key order; empty: from the start
	MaxKey  []string `json:"max_key,omitempty"`  // the table's largest key when its snapshot began
	// Window is the first table's snapshot window so far (with LastKey; see window.go).
	Window *WindowPosition `json:"window,omitempty"`
	// Gap is what the destination missed, for a snapshot taken because it did (kept so that a
	// resumed snapshot's windows still say so).
	Gap *bronze.Gap `json:"gap,omitempty"`
}

// loadManifest reads the destination's manifest and refuses one written from another source. A
// missing manifest is a new (or emptied) destination: every table needs a snapshot.
func (c *capturer) loadManifest(ctx context.Context, id SourceID) error {
	key := ManifestKey(c.cfg.TopicPrefix)
	var body []byte
	err := c.callStore(ctx, "read", key, func(ctx context.Context) (err error) {
		body, err = c.cfg.Manifest.Read(ctx, key)
		return err
	})
	if err != nil {
		return fmt.Errorf("capture: read manifest %s: %w", key, err)
	}
	if body == nil {
		c.manifest = &Manifest{Source: id, Snapshots: map[string]SnapshotRecord{}}
		c.log.Warn("destination holds no manifest: every table is snapshotted again", "manifest", key)
		return c.saveManifest(ctx)
	}
	var m Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("capture: manifest %s is not valid JSON (%v); move it away to snapshot again", key, err)
	}
	if m.Source != id {
		return fmt.Errorf("capture: the destination holds history from another source: manifest %s records "+
			"system identifier %s, database %s, slot %s, publication %s, and this capture reads system identifier %s, "+
			"database %s, slot %s, publication %s; refusing to mix them (use an empty destination or another "+
			"topic prefix, or remove the old history and its manifest)", key,
			m.Source.SystemID, m.Source.Database, m.Source.Slot, m.Source.Publication, id.SystemID, id.Database, id.Slot, id.Publication)
	}
	if m.Snapshots == nil {
		m.Snapshots = map[string]SnapshotRecord{}
	}
	c.manifest = &m
	return nil
}

// saveManifest writes the manifest as it stands (nowhere without a store), after the periodic
// write in flight, if any (writes reach the store in the order they were made).
func (c *capturer) saveManifest(ctx context.Context) error {
	if c.cfg.Manifest == nil {
		return nil
	}
	if err := c.settleManifest(ctx, true); err != nil {
		return err
	}
	body, lsn, err := c.manifestBody()
	if err != nil {
		return err
	}
	if err := c.writeManifest(ctx, body); err != nil {
		return err
	}
	c.recorded = max(c.recorded, lsn)
	return nil
}

func (c *capturer) manifestBody() ([]byte, pglogrepl.LSN, error) {
	body, err := json.MarshalIndent(c.manifest, "", "  ")
	if err != nil {
		return nil, 0, fmt.Errorf("capture: manifest: %w", err)
	}
	lsn, _ := pglogrepl.ParseLSN(c.manifest.Delivered) // "" (none yet) is 0
	return body, lsn, nil
}

func (c *capturer) writeManifest(ctx context.Context, body []byte) error {
	key := ManifestKey(c.cfg.TopicPrefix)
	if err := c.writeStore(ctx, key, body); err != nil {
		return fmt.Errorf("capture: write manifest %s: %w", key, err)
	}
	return nil
}

// A call of the manifest store is an S3 request of a few kilobytes (milliseconds; 0.1-1.4 s seen
// under load): each attempt has a timeout, and one that failed or timed out is tried again
// after a backoff, a few times in all, as the other stages retry S3. Without a bound
// a store that never answers (a connection hung on a dead peer) held the capture for good: the
// synchronous writes (a snapshot recorded, the start's, the way out's) run on the stream's
// goroutine, and nothing is streamed or confirmed meanwhile. Past the attempts the capture stops
// with the error, the slot confirmed no further than what the store holds, and its restart goes
// on from there.
var storeCall = retry.Policy{Attempts: 4, Timeout: 10 * time.Second,
	Backoff: retry.Backoff{First: 200 * time.Millisecond, Max: 2 * time.Second}}

// writeStore writes body under key in the manifest store (callStore).
func (c *capturer) writeStore(ctx context.Context, key string, body []byte) error {
	return c.callStore(ctx, "write", key, func(ctx context.Context) error { return c.cfg.Manifest.Write(ctx, key, body) })
}

// callStore runs call, one request of the manifest store about key, bounded and retried (see
// storeCall). A permanent error (retry.IsPermanent) is not tried again, and ctx ending stops the
// tries: its error is then in the chain (a capture stopping is told from a failure).
func (c *capturer) callStore(ctx context.Context, op, key string, call func(context.Context) error) error {
	p := storeCall
	p.Again = func(attempt int, wait time.Duration, err error) bool {
		if retry.IsPermanent(err) {
			return false
		}
		c.log.Warn("the manifest store failed a "+op+"; trying again", "key", key, "attempt", attempt, "after", wait, "err", err)
		return true
	}
	return retry.Do(ctx, p, call)
}

// saveManifestBehind starts a periodic write of the manifest as it stands (the delivered position,
// a snapshot's progress) beside the stream, and returns false if one is still in flight (the next
// status period tries again). It was a PUT on the stream's goroutine: every streamed change
// behind it waited for it, 0.1-1.4 s under load, once a second during a snapshot. The slot is
// confirmed no further than a position the store holds: recorded moves once the write is done.
func (c *capturer) saveManifestBehind(ctx context.Context) (bool, error) {
	if c.cfg.Manifest == nil {
		return true, nil
	}
	if err := c.settleManifest(ctx, false); err != nil || c.manifestWrite != nil {
		return false, err
	}
	body, lsn, err := c.manifestBody()
	if err != nil {
		return false, err
	}
	done := make(chan error, 1)
	wctx, cancel := context.WithCancel(ctx)
	c.manifestWrite, c.manifestWriteLSN, c.manifestCancel = done, lsn, cancel
	go func() { done <- c.writeManifest(wctx, body) }()
	return true, nil
}

// settleManifest takes the result of the periodic write in flight, waiting for it with wait
// until ctx ends. A write still unanswered then is given up (cancelled): its position is not
// recorded, so the slot stays confirmed to what the store answered for, and the capture stops
// with the error and writes nothing more, so a restart resumes from there. A write the store had
// already taken whole may still land, even after a restart's: it holds a state already delivered,
// so at worst the next start snapshots some table again (docs/capture.md).
func (c *capturer) settleManifest(ctx context.Context, wait bool) error {
	if c.manifestWrite == nil {
		return nil
	}
	var err error
	select {
	case err = <-c.manifestWrite:
	default:
		if !wait {
			return nil
		}
		select {
		case err = <-c.manifestWrite:
		case <-ctx.Done():
			err = fmt.Errorf("capture: the manifest store did not answer the write of %s (delivered position %s): %w",
				ManifestKey(c.cfg.TopicPrefix), c.manifestWriteLSN, ctx.Err())
			c.manifestCancel()
			c.manifestWrite = nil
			return err
		}
	}
	c.manifestCancel()
	c.manifestWrite = nil
	if errors.Is(err, context.Canceled) {
		return nil // the capture is stopping: its final status writes the position again
	}
	if err != nil {
		return err
	}
	c.recorded = max(c.recorded, c.manifestWriteLSN)
	return nil
}

// recordSnapshots marks tables completely delivered.
func (c *capturer) recordSnapshots(ctx context.Context, kind string, lsn pglogrepl.LSN, tables ...string) error {
	for _, t := range tables {
		c.manifest.Snapshots[t] = SnapshotRecord{Kind: kind, CompletedAt: time.Now().UTC(), LSN: lsn.String()}
	}
	if err := c.saveManifest(ctx); err != nil {
		return err
	}
	c.log.Info("snapshot recorded in the destination manifest", "kind", kind, "tables", tables, "lsn", lsn.String())
	return nil
}

// missingSnapshots are the captured tables the destination holds no completed snapshot of.
func (c *capturer) missingSnapshots() []string {
	var out []string
	for _, t := range c.cfg.Tables {
		if _, ok := c.manifest.Snapshots[t]; !ok {
			out = append(out, t)
		}
	}
	return out
}

// deliveredEvery bounds how often the delivered position alone is written (an S3 PUT in AWS): the
// slot is confirmed no further than the last position written, so it trails by at most this.
const deliveredEvery = 2 * time.Second

// confirmable returns how far the slot may be confirmed given the delivered position flushed.
// The manifest records a position before the slot is confirmed to it, so a crash between the two
// leaves the slot behind the manifest (the restart re-delivers a little), never ahead of it.
func (c *capturer) confirmable(ctx context.Context, flushed pglogrepl.LSN, force bool) (pglogrepl.LSN, error) {
	if c.cfg.Manifest == nil {
		return flushed, nil
	}
	if err := c.settleManifest(ctx, force); err != nil {
		return 0, err
	}
	switch {
	case flushed <= c.recorded:
	case force:
		c.manifest.Delivered = flushed.String()
		if err := c.saveManifest(ctx); err != nil {
			return 0, err
		}
		c.recordedAt = time.Now()
	case time.Since(c.recordedAt) >= deliveredEvery && c.manifestWrite == nil:
		c.manifest.Delivered = flushed.String()
		if _, err := c.saveManifestBehind(ctx); err != nil {
			return 0, err
		}
		c.recordedAt = time.Now()
	}
	return min(flushed, c.recorded), nil
}

// checkDelivered compares the slot's confirmed position with what the destination recorded
// receiving. A slot further on than the manifest (beyond any crash between the two writes, see
// confirmable) was consumed into another destination: a second checkout sharing the cluster and
// the slot name, a lake restored from an older copy. The changes in between never reached this
// destination, so every table is snapshotted again, online, as for a missing manifest.
// It returns the position up to which the destination received every change (0 when it holds
// none), and why it missed changes, or "" when it is whole.
func (c *capturer) checkDelivered(ctx context.Context, slot pglogrepl.LSN, resumed bool) (pglogrepl.LSN, string, error) {
	m := c.manifest
	var delivered pglogrepl.LSN
	if m.Delivered != "" {
		var err error
		if delivered, err = pglogrepl.ParseLSN(m.Delivered); err != nil {
			return 0, "", fmt.Errorf("capture: manifest %s: delivered_lsn %q: %w", ManifestKey(c.cfg.TopicPrefix), m.Delivered, err)
		}
	}
	reason := ""
	if resumed && delivered < slot && (len(m.Snapshots) > 0 || m.Incremental != nil) {
		if m.Delivered == "" {
			reason = fmt.Sprintf("the destination manifest records no delivered position, so it may lack changes the slot (at %s) has passed", slot)
		} else {
			reason = fmt.Sprintf("the slot is at %s, past the %s this destination received: another destination consumed the changes in between", slot, delivered)
		}
		c.log.Warn("the destination missed changes consumed from the slot: every table is snapshotted again", "reason", reason,
			"slot_lsn", slot.String(), "delivered_lsn", m.Delivered)
		m.Snapshots = map[string]SnapshotRecord{}
		m.Incremental = nil // its tables' rows already read may have changed in the gap too
	}
	// Streaming starts at the slot: the destination receives everything from there on, and with
	// the snapshots cleared in the same write a crash before they finish snapshots again.
	c.recorded = max(delivered, slot)
	m.Delivered = c.recorded.String()
	return delivered, reason, c.saveManifest(ctx)
}
