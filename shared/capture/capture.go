// Package capture streams committed Postgres changes to Kafka as Debezium 3.6.1 change events
// (JSON, schemas disabled), through a logical replication slot with pgoutput.
//
// It takes an initial snapshot consistent with its slot (op "r"), then streams inserts, updates
// and deletes (op "c", "u", "d", a tombstone after each delete). It confirms to Postgres only the
// end LSN of transactions whose every event Kafka has acknowledged, so after a crash it resumes
// from the slot and re-delivers, never loses; consumers deduplicate by source.lsn.
package capture

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
)

// Config is the capture's configuration; zero fields take the defaults of the repo's connector
// configuration (debezium/fin-postgres.properties).
type Config struct {
	// DatabaseURL is the Postgres to capture (a normal connection URL; the capture adds the
	// replication parameter itself).
	DatabaseURL string
	// Slot is the logical replication slot (default fin_capture); created when absent.
	Slot string
	// Publication names the captured tables (default fin_cdc); created for Tables when absent.
	Publication string
	// TopicPrefix is Debezium's topic.prefix (default fin): topics are <prefix>.<schema>.<table>.
	TopicPrefix string
	// Tables are the captured tables, schema-qualified, in snapshot order (Debezium's
	// table.include.list). Default: public.customers, public.accounts, public.transactions.
	Tables []string
	// HeartbeatInterval is how often a heartbeat goes to __debezium-heartbeat.<prefix> and the
	// slot position is confirmed (default 10s, Debezium's heartbeat.interval.ms).
	HeartbeatInterval time.Duration
	// Manifest, when set, keeps the record of what the destination holds (source, completed
	// snapshots, a running incremental snapshot's position) beside the delivered data. At start
	// every table the destination holds no completed snapshot of is snapshotted incrementally
	// while streaming resumes, and a destination written from another source is refused. Without
	// it the capture trusts the slot (and capture_snapshots) as before.
	Manifest ManifestStore
	// SignalTable is Debezium's signal.data.collection (default public.debezium_signal): it
	// takes execute-snapshot requests and the incremental snapshots' watermarks. It must be in
	// the publication.
	SignalTable string
	// ChunkSize is how many rows an incremental snapshot reads at a time (default 4096; Debezium's
	// incremental.snapshot.chunk.size defaults to 1024, at which the per-chunk watermark commit
	// and round trip cost more than the rows): the capture holds at most three chunks.
	ChunkSize int
	// Metrics, when set, is kept current (positions and lag) for whoever watches the capture.
	Metrics *Metrics
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// DefaultTables are the tables of the system of record (bronze.SourceTables), schema-qualified,
// in Debezium's snapshot order.
var DefaultTables = qualified("public", bronze.SourceTables())

func qualified(schema string, tables []string) []string {
	for i, t := range tables {
		tables[i] = schema + "." + t
	}
	return tables
}

func (c Config) withDefaults() Config {
	if c.Slot == "" {
		c.Slot = "fin_capture"
	}
	if c.Publication == "" {
		c.Publication = "fin_cdc"
	}
	if c.TopicPrefix == "" {
		c.TopicPrefix = "fin"
	}
	if len(c.Tables) == 0 {
		c.Tables = DefaultTables
	}
	if c.SignalTable == "" {
		c.SignalTable = "public.debezium_signal"
	}
	if c.ChunkSize <= 0 {
		c.ChunkSize = 4096
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 10 * time.Second
	}
	if c.Metrics == nil {
		c.Metrics = &Metrics{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Producer is where events go: *kgo.Client satisfies it. Produce must call promise exactly once
// per record, after the broker durably took it or gave up.
type Producer interface {
	Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error))
}

// Metrics are the capture's positions and lag, safe to read while it runs.
type Metrics struct {
	ReceivedLSN  atomic.Uint64 // last WAL position read from the slot
	ConfirmedLSN atomic.Uint64 // last position confirmed to Postgres (all before it is in Kafka)
	ServerLSN    atomic.Uint64 // the server's WAL end, from its keepalives
	Events       atomic.Int64  // change events produced (tombstones and heartbeats not counted)
	LagMicros    atomic.Int64  // age of the oldest transaction not yet in Kafka, 0 when caught up

	// Incremental snapshots.
	Snapshotting       atomic.Bool  // one is running
	SnapshotRows       atomic.Int64 // rows emitted (op r, snapshot incremental)
	SnapshotDropped    atomic.Int64 // chunk rows dropped because they changed within the window
	SnapshotChunks     atomic.Int64 // chunks emitted
	SnapshotChunkMax   atomic.Int64 // most rows in one chunk (at most ChunkSize)
	SnapshotHeldMax    atomic.Int64 // most chunks held at once (at most maxPending)
	SnapshotsCompleted atomic.Int64 // table snapshots recorded in the manifest
	// WindowsHeld counts the snapshot windows waiting for transactions held open across their
	// tables' snapshots to end before they are written (window.go).
	WindowsHeld atomic.Int64

	// WaitingFor says, while the slot is being created, which transactions elsewhere on the
	// cluster its creation waits for and who holds them (createSlot); nil otherwise.
	WaitingFor atomic.Pointer[string]
}

// LagBytes is how much WAL the slot holds that the capture has not confirmed.
func (m *Metrics) LagBytes() int64 {
	s, c := m.ServerLSN.Load(), m.ConfirmedLSN.Load()
	if s <= c {
		return 0
	}
	return int64(s - c)
}

// Lag is how long the oldest committed transaction not yet confirmed has waited.
func (m *Metrics) Lag() time.Duration { return time.Duration(m.LagMicros.Load()) * time.Microsecond }

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Run captures until ctx ends (it then returns nil) or something fails (the error says what).
// Running it again resumes from the slot.
func Run(ctx context.Context, cfg Config, producer Producer) error {
	cfg = cfg.withDefaults()
	for _, name := range append([]string{cfg.Slot, cfg.Publication, cfg.SignalTable}, cfg.Tables...) {
		for _, part := range strings.Split(name, ".") {
			if !identifier.MatchString(part) {
				return fmt.Errorf("capture: %q is not a plain lower-case Postgres identifier", name)
			}
		}
	}
	c := &capturer{cfg: cfg, producer: producer, log: cfg.Logger.With("slot", cfg.Slot), tables: map[uint32]*table{}}
	err := c.run(ctx)
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err)) {
		return nil
	}
	return err
}

type capturer struct {
	cfg      Config
	producer Producer
	log      *slog.Logger
	meta     *pgx.Conn // catalog queries and snapshot reads
	repl     *pgconn.PgConn
	database string
	env      *envelopeWriter
	tables   map[uint32]*table // by relation id, from Relation messages
	track    tracker
	keyBuf   []byte
	tail     []byte // the end of an event's envelope, after its images
	txm      txMeta // Debezium's transaction metadata of the streamed transaction (txmeta.go)
	blockBuf []byte // an event's transaction block
	// chunkConn reads incremental snapshot chunks in their own goroutine (see startRead).
	chunkConn *pgx.Conn
	// markConn writes the snapshot's watermarks in their own goroutine (writeWatermarks).
	markConn *pgx.Conn
	// chunkStmts are the chunk queries prepared on chunkConn, by their text (chunkStatement).
	chunkStmts    map[string]*pgconn.StatementDescription
	chunkPrepared int      // statements prepared on chunkConn, for their names
	wake          readWake // a chunk read that ends wakes the stream (stream.go)

	manifest      *Manifest // the destination's record (in memory only without Config.Manifest)
	manifestDirty bool      // positions applied since the last write
	manifestSaved time.Time
	recorded      pglogrepl.LSN // the delivered position the stored manifest holds
	recordedAt    time.Time
	// manifestWrite is the periodic manifest write in flight (saveManifestBehind), its result to
	// come; manifestWriteLSN the delivered position it writes, manifestCancel what cancels it.
	manifestWrite    chan error
	manifestWriteLSN pglogrepl.LSN
	manifestCancel   context.CancelFunc
	inc              *incremental          // the running incremental snapshot
	progress         []progress            // emitted chunks not yet delivered
	recent           [recentRuns]recentRun // the last (transaction, table) runs of changes (window.go)
	recentN          int
	held             []*heldWindow // snapshot windows waiting for transactions held across them (window.go)
	maxHeld          int           // the most transactions a window waits for (heldBoundSQL)
	probe            *heldProbe    // the held-transaction marker in flight
	probedAt         time.Time
	probeWait        time.Duration // until the next probe (window.go)
}

// connConfig returns the URL with the settings every connection of the capture needs: UTC and
// ISO dates (so text forms parse the same everywhere) and hex bytea.
func connURL(base string, replication bool) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("capture: database URL must be a postgres:// URL")
	}
	q := u.Query()
	q.Set("timezone", "UTC")
	q.Set("datestyle", "ISO")
	q.Set("bytea_output", "hex")
	q.Set("application_name", "fin-capture")
	if replication {
		q.Set("replication", "database")
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func (c *capturer) run(ctx context.Context) error {
	metaURL, err := connURL(c.cfg.DatabaseURL, false)
	if err != nil {
		return err
	}
	replURL, _ := connURL(c.cfg.DatabaseURL, true)
	if c.meta, err = pgx.Connect(ctx, metaURL); err != nil {
		return fmt.Errorf("capture: connect: %w", err)
	}
	defer c.meta.Close(context.WithoutCancel(ctx))
	defer c.closeChunkConn(ctx)
	defer c.closeMarkConn(ctx)
	replCfg, err := pgconn.ParseConfig(replURL)
	if err != nil {
		return fmt.Errorf("capture: replication connection: %w", err)
	}
	// The stream is one long burst of small messages: read it in large chunks, not 8 KB ones.
	replCfg.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
		return pgproto3.NewFrontend(bufio.NewReaderSize(r, 1<<20), w)
	}
	if c.repl, err = pgconn.ConnectConfig(ctx, replCfg); err != nil {
		return fmt.Errorf("capture: replication connection: %w", err)
	}
	defer c.repl.Close(context.WithoutCancel(ctx))
	if err := c.meta.QueryRow(ctx, "SELECT current_database(), "+heldBoundSQL).Scan(&c.database, &c.maxHeld); err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	if maxHeld > 0 {
		c.maxHeld = maxHeld
	}
	c.env = newEnvelopeWriter(c.cfg.TopicPrefix, c.database)
	if err := c.checkTables(ctx); err != nil {
		return err
	}
	if err := c.ensurePublication(ctx); err != nil {
		return err
	}
	sys, err := pglogrepl.IdentifySystem(ctx, c.repl)
	if err != nil {
		return fmt.Errorf("capture: identify system: %w", err)
	}
	c.manifest = &Manifest{Snapshots: map[string]SnapshotRecord{}}
	if c.cfg.Manifest != nil {
		id := SourceID{SystemID: sys.SystemID, Database: c.database, Slot: c.cfg.Slot, Publication: c.cfg.Publication}
		if err := c.loadManifest(ctx, id); err != nil {
			return err
		}
	}
	start, lastCommit, err := c.ensureSlot(ctx)
	if err != nil {
		return err
	}
	if c.cfg.Manifest != nil {
		if err := c.catchUpDestination(ctx, start, lastCommit != nil); err != nil {
			return err
		}
	}
	return c.stream(ctx, start, lastCommit)
}

// catchUpDestination checks what the destination's manifest says was delivered against the slot
// starting at start, writes the windows of snapshots held at the last stop, resumes a snapshot
// in progress, and requests one of every table the destination holds no completed snapshot of.
func (c *capturer) catchUpDestination(ctx context.Context, start pglogrepl.LSN, hasCommit bool) error {
	delivered, why, err := c.checkDelivered(ctx, start, hasCommit)
	if err != nil {
		return err
	}
	if err := c.writeHeldWindows(ctx); err != nil {
		return err
	}
	if p := c.manifest.Incremental; p != nil && len(p.Tables) > 0 {
		c.resumeSnapshot(p)
	}
	var missing []string
	for _, t := range c.missingSnapshots() {
		if c.inc == nil || !slices.Contains(c.inc.tables, t) {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		reason := "the destination manifest records no completed snapshot of these tables from this source"
		if why != "" {
			reason = why
		}
		// it received every change up to delivered, and streams from the slot's position on
		gap := &bronze.Gap{From: int64(delivered), To: int64(max(delivered, start))}
		if err := c.requestSnapshot(ctx, "auto-"+uuid.NewString(), reason, missing, gap); err != nil {
			return err
		}
	}
	return nil
}

// checkTables refuses tables whose updates would lack before-images: without REPLICA IDENTITY
// FULL neither full before-images nor unchanged TOAST values can be told.
func (c *capturer) checkTables(ctx context.Context) error {
	for _, name := range c.cfg.Tables {
		var ident string
		err := c.meta.QueryRow(ctx, "SELECT relreplident::text FROM pg_class WHERE oid = to_regclass($1)", name).Scan(&ident)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("capture: table %s does not exist", name)
		}
		if err != nil {
			return fmt.Errorf("capture: table %s: %w", name, err)
		}
		if ident != "f" {
			return fmt.Errorf("capture: table %s needs REPLICA IDENTITY FULL (ALTER TABLE %s REPLICA IDENTITY FULL) so updates and deletes carry whole before-images", name, name)
		}
	}
	return nil
}

// ensurePublication creates the publication for the tables when absent, and says which
// configured tables an existing one misses.
func (c *capturer) ensurePublication(ctx context.Context) error {
	var exists bool
	if err := c.meta.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_publication WHERE pubname = $1)", c.cfg.Publication).Scan(&exists); err != nil {
		return fmt.Errorf("capture: publication %s: %w", c.cfg.Publication, err)
	}
	var signal bool
	if err := c.meta.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", c.cfg.SignalTable).Scan(&signal); err != nil {
		return fmt.Errorf("capture: signal table %s: %w", c.cfg.SignalTable, err)
	}
	if !signal {
		return fmt.Errorf("capture: signal table %s does not exist (run the migrations: fin migrate)", c.cfg.SignalTable)
	}
	if !exists {
		sql := fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s", c.cfg.Publication, strings.Join(append(slices.Clone(c.cfg.Tables), c.cfg.SignalTable), ", "))
		if _, err := c.meta.Exec(ctx, sql); err != nil {
			return fmt.Errorf("capture: create publication %s: %w", c.cfg.Publication, err)
		}
		c.log.Info("publication created", "publication", c.cfg.Publication, "tables", c.cfg.Tables)
		return nil
	}
	rows, err := c.meta.Query(ctx, "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1", c.cfg.Publication)
	if err != nil {
		return fmt.Errorf("capture: publication %s: %w", c.cfg.Publication, err)
	}
	published, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("capture: publication %s: %w", c.cfg.Publication, err)
	}
	for _, t := range append(slices.Clone(c.cfg.Tables), c.cfg.SignalTable) {
		found := false
		for _, p := range published {
			found = found || p == t
		}
		if !found {
			return fmt.Errorf("capture: publication %s does not include %s (ALTER PUBLICATION %s ADD TABLE %s)", c.cfg.Publication, t, c.cfg.Publication, t)
		}
	}
	return nil
}
