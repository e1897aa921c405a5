package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fin-orchestrator/fin-orchestrator/shared/database"
	"github.com/fin-orchestrator/fin-orchestrator/shared/generator"
	"github.com/fin-orchestrator/fin-orchestrator/shared/kafka"
	"github.com/fin-orchestrator/fin-orchestrator/shared/localpg"
	"github.com/fin-orchestrator/fin-orchestrator/shared/s3local"
	"github.com/fin-orchestrator/fin-orchestrator/shared/stack"
	"github.com/fin-orchestrator/fin-orchestrator/shared/statedir"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

func init() {
	register(command{name: "up", summary: "run the whole stack as template.yaml describes it (what `make run` runs); Ctrl-C stops it", run: runUp,
		env: []string{mallocArenas}})
}

// mallocArenas caps the C library's malloc arenas in fin up (glibc reads it only at start). Its
// default, 8 a core, gave each of the threads that DuckDB and cgo calls run on an arena of its
// own, and each kept the free memory of its own peaks: 15 arenas held 91 MB for 21 MB in use,
// and their resident share grew from 7 to 40 MB in the first 8 minutes of `fin up --rate 200`
// (docs/benchmarks.md). DuckDB's big allocations (its buffers, jemalloc's) do not go through
// these arenas, so two are contended little. MALLOC_ARENA_MAX set by the user wins.
const mallocArenas = "MALLOC_ARENA_MAX=2"

// runUp brings the stack up in one process: the schema, a first data set when the database is
// empty, the functions of template.yaml with their event sources, the console, and continuous
// activity with its progress.
func runUp(ctx context.Context, args []string) error {
	f, err := parseUpFlags(args)
	if err != nil {
		return err
	}
	if f.check {
		if _, err := stack.LoadTemplate(f.template, nil); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%s: every function, event and property fin up emulates passes AWS's rules\n", f.template)
		return nil
	}
	return startUp(ctx, f)
}

// upFlags are fin up's flags.
type upFlags struct {
	config, template  string
	noGenerate, check bool
	rate              float64
}

func parseUpFlags(args []string) (upFlags, error) {
	fs := newFlags("up", "[flags]")
	path := fs.String("config", "", "generator configuration (default: ./config.yaml when present)")
	tpl := fs.String("template", "template.yaml", "the SAM template whose functions and events to run")
	noGen := fs.Bool("no-generate", false, "run the stack without generating activity")
	rate := fs.Float64("rate", 0, "override continuous.rate (operations per second)")
	check := fs.Bool("check", false, "only hold the template to AWS's rules, as every start does, and exit")
	if err := parseFlags(fs, args); err != nil {
		return upFlags{}, err
	}
	if err := atLeast(fs, "rate", *rate, 0); err != nil {
		return upFlags{}, err
	}
	return upFlags{config: *path, template: *tpl, noGenerate: *noGen, check: *check, rate: *rate}, nil
}

// startUp runs the stack until ctx ends: state and log, database (bulk-loaded when empty), the
// stack itself, then continuous activity unless -no-generate.
func startUp(ctx context.Context, f upFlags) error {
	cfg, err := loadGeneratorConfig(f.config, 0, f.rate)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	root, err := filepath.Abs(".")
	if err != nil {
		return err
	}
	state := statedir.Dir()
	if err := os.MkdirAll(state, 0o750); err != nil {
		return err
	}
	logPath := filepath.Join(state, "logs", "fin-up.log")
	logFile, err := logToFile(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	dumpHeapOnSignal(ctx, state)
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	pool, err := openMigrated(ctx, 16)
	if err != nil {
		return err
	}
	defer pool.Close()
	if !f.noGenerate {
		if err := loadIfEmpty(ctx, pool, cfg); err != nil {
			return err
		}
	}

	conf, err := stackConfig(f, root, state, pool)
	if err != nil {
		return err
	}
	st, wait, err := stack.Up(ctx, conf)
	if err != nil {
		return err
	}
	// Where the broker is, for `fin kafka-tail` (the embedded one takes a random port).
	os.WriteFile(filepath.Join(state, "kafka.addr"), []byte(st.Kafka+"\n"), 0o640)
	printUp(st, logPath)

	if !f.noGenerate {
		// The generator's writers are clients of their own, with a connection each: on the
		// stack's pool they would take the API's and the console's connections.
		genPool, err := database.Open(ctx, localpg.URL(), cfg.Continuous.Writers)
		if err != nil {
			return err
		}
		defer genPool.Close()
		genErr := make(chan error, 1)
		go func() { genErr <- generateContinuously(ctx, genPool, cfg) }()
		defer func() { <-genErr }()
	}
	return wait()
}

// stackConfig is the stack's configuration from the flags and the environment.
func stackConfig(f upFlags, root, state string, pool *pgxpool.Pool) (stack.Config, error) {
	retention, retentionBytes, err := kafkaRetention()
	if err != nil {
		return stack.Config{}, err
	}
	threads, err := warehouseThreads()
	if err != nil {
		return stack.Config{}, err
	}
	return stack.Config{
		Template: f.template, Root: root, StateDir: state, DatabaseURL: localpg.URL(), Pool: pool,
		Slot:         envOr("FIN_CAPTURE_SLOT", slotFor(pool.Config().ConnConfig.Database)),
		KafkaBrokers: kafka.BrokersFromEnv(), KafkaRetention: retention,
		KafkaRetentionBytes: retentionBytes,
		S3Endpoint:          os.Getenv("S3_ENDPOINT"), S3AccessKey: os.Getenv("S3_ACCESS_KEY"), S3SecretKey: os.Getenv("S3_SECRET_KEY"),
		Bucket:        envOr("LAKE_BUCKET", "lake"),
		S3Addr:        envOr("S3_ADDR", s3local.DefaultAddr),
		APIAddr:       envOr("API_ADDR", "127.0.0.1:8000"),
		ConsoleAddr:   envOr("CONSOLE_ADDR", "127.0.0.1:8080"),
		WarehousePath: duckdb.DefaultPath(),
		// FIN_WAREHOUSE_MEMORY_LIMIT bounds the stack's own DuckDB apart from dbt's.
		WarehouseMemoryLimit: os.Getenv("FIN_WAREHOUSE_MEMORY_LIMIT"),
		WarehouseThreads:     threads,
		DbtSchedule:          envOr("FIN_DBT_SCHEDULE", "rate(1 minute)"),
		// FIN_DBT_BUILD_ON_LOAD=false leaves gold to the schedule (the template's parameter).
		TemplateParams: map[string]string{"DbtBuildOnLoad": envOr("FIN_DBT_BUILD_ON_LOAD", "true")},
		DevSecretPath:  devSecretPath(),
		WebhookToken:   os.Getenv("FIN_WEBHOOK_TOKEN"),
	}, nil
}

// kafkaRetention is how long the embedded broker keeps landed records, FIN_KAFKA_RETENTION (a Go
// duration, else a minute, so `fin kafka-tail --from-beginning` shows the last minute), and how
// many bytes of them it keeps at most per partition, FIN_KAFKA_RETENTION_BYTES (else
// stack.DefaultKafkaRetentionBytes, 1 MiB; 0: no bound), so the broker's memory follows neither
// the rate nor a backlog caught up.
func kafkaRetention() (time.Duration, int64, error) {
	v := envOr("FIN_KAFKA_RETENTION", "1m")
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, 0, fmt.Errorf("%w: FIN_KAFKA_RETENTION=%q is not a duration such as 1m or 0s", errUsage, v)
	}
	b := envOr("FIN_KAFKA_RETENTION_BYTES", strconv.Itoa(stack.DefaultKafkaRetentionBytes))
	n, err := strconv.ParseInt(b, 10, 64)
	if err != nil || n < 0 {
		return 0, 0, fmt.Errorf("%w: FIN_KAFKA_RETENTION_BYTES=%q is not a number of bytes such as 1048576 or 0", errUsage, b)
	}
	return d, n, nil
}

// warehouseThreads is FIN_WAREHOUSE_THREADS, the threads of the stack's own DuckDB (0 or unset:
// DuckDB's default, one per core).
func warehouseThreads() (int, error) {
	v := envOr("FIN_WAREHOUSE_THREADS", "0")
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: FIN_WAREHOUSE_THREADS=%q is not a number of threads such as 1 (0: one per core)", errUsage, v)
	}
	return n, nil
}

// defaultMemoryLimit is fin up's soft limit on the Go runtime's memory when GOMEMLIMIT is not set:
// about three times the live heap of a stack at 200 operations a second, so the collector hands
// freed memory back to the OS rather than keep the peak of a burst (DuckDB's memory is its own,
// DUCKDB_MEMORY_LIMIT).
const defaultMemoryLimit = 192 << 20

// loadIfEmpty bulk-loads the configured data set into a database without customers, so a first
// fin up has history to show.
func loadIfEmpty(ctx context.Context, pool *pgxpool.Pool, cfg generator.Config) error {
	var customers int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM customers").Scan(&customers); err != nil {
		return fmt.Errorf("count customers: %w", err)
	}
	if customers > 0 {
		return nil
	}
	fmt.Fprintln(os.Stderr, "empty database: loading the configured data set first")
	return bulkLoad(ctx, pool, cfg)
}

// printUp tells the user where each part of the running stack is.
func printUp(st *stack.Stack, logPath string) {
	fmt.Fprintf(os.Stderr, `
fin-orchestrator is up
  API       %s   (docs: %s/docs; a token: bin/fin token, or bin/fin token --customer ID)
  console   %s   (works once; after that add ?token= with the token in %s;
            its actions take an operator's token: bin/fin token --scopes bank:operator)
  Kafka     %s   (bin/fin kafka-tail fin.public.accounts: the Debezium events)
  S3        %s   (bucket %s%s)
  warehouse %s (RAW), %s (silver, gold)   (bin/fin sql "select count(*) from raw.transactions")
  log       %s
Ctrl-C stops everything; a restart resumes where it stopped.

`, st.APIURL, st.APIURL, st.ConsoleLink(), duckdb.TokenPath(duckdb.DefaultPath()), st.Kafka, st.S3URL, envOr("LAKE_BUCKET", "lake"), s3Hint(st), duckdb.RawPath(duckdb.DefaultPath()), duckdb.DefaultPath(), logPath)
}

// s3Hint says how to reach the local S3, which takes only requests signed with the key pair in
// its credentials file (never printed).
func s3Hint(st *stack.Stack) string {
	if st.S3Credentials == "" {
		return ""
	}
	return fmt.Sprintf("; aws CLI: AWS_SHARED_CREDENTIALS_FILE=%s aws --profile %s --endpoint-url %s s3 ls s3://%s",
		st.S3Credentials, s3local.Profile, st.S3URL, envOr("LAKE_BUCKET", "lake"))
}

// slotFor names the capture's slot after the database: "fin_capture" for the default database
// fin, "fin_capture_<db>" for another one on the same cluster.
func slotFor(db string) string {
	if db == "fin" || db == "" {
		return "fin_capture"
	}
	var b []rune
	for _, r := range strings.ToLower(db) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b = append(b, r)
		} else {
			b = append(b, '_')
		}
	}
	return "fin_capture_" + string(b)
}
