// Package stack is this repository's local stack, composed on lambdalocal: the embedded Kafka
// and S3, the DuckDB warehouse, change capture behind the landed gate, the four functions built
// by their Lambdas' constructors, and the console (status, DLQ, SQL, dbt runs).
package stack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fin-orchestrator/fin-orchestrator/shared/api"
	"github.com/fin-orchestrator/fin-orchestrator/shared/capture"
	"github.com/fin-orchestrator/fin-orchestrator/shared/console"
	"github.com/fin-orchestrator/fin-orchestrator/shared/dbtrun"
	"github.com/fin-orchestrator/fin-orchestrator/shared/eventsource"
	"github.com/fin-orchestrator/fin-orchestrator/shared/history"
	"github.com/fin-orchestrator/fin-orchestrator/shared/kafka"
	"github.com/fin-orchestrator/fin-orchestrator/shared/lambdalocal"
	"github.com/fin-orchestrator/fin-orchestrator/shared/landing"
	"github.com/fin-orchestrator/fin-orchestrator/shared/loader"
	"github.com/fin-orchestrator/fin-orchestrator/shared/objectstore"
	"github.com/fin-orchestrator/fin-orchestrator/shared/runlog"
	"github.com/fin-orchestrator/fin-orchestrator/shared/s3local"
	"github.com/fin-orchestrator/fin-orchestrator/shared/samtemplate"
	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// APIFunction is the logical id of the api function in template.yaml (`fin api` runs it too).
const APIFunction = "ApiFunction"

// Logical ids of the template's functions, and the handlers the local stack gives them.
const (
	apiFunction     = APIFunction
	landingFunction = "CdcLandingFunction"
	loaderFunction  = "WarehouseLoaderFunction"
	dbtFunction     = "DbtRunnerFunction"
)

// Config is where each part of the local stack is, and which real parts replace the
// embedded defaults.
type Config struct {
	Template    string // template.yaml
	Root        string // the repository (dbt/ and .venv/ live there)
	StateDir    string // .fin: Kafka log, S3 objects, warehouse, tokens
	DatabaseURL string
	Pool        *pgxpool.Pool
	// Slot is the capture's replication slot; slot names are cluster-wide, so each database
	// captured on one cluster needs its own.
	Slot string

	KafkaBrokers []string // empty: the embedded broker, its log in StateDir/kafka
	// KafkaRetention is how long the embedded broker keeps a record the landing has committed
	// (retention.ms, but only ever for landed records); 0 deletes a record once landed.
	KafkaRetention time.Duration
	// KafkaRetentionBytes bounds what the embedded broker keeps of landed records per partition
	// (retention.bytes, but never a record not yet landed); 0: no bound but KafkaRetention.
	// fin up's default is DefaultKafkaRetentionBytes.
	KafkaRetentionBytes int64
	S3Endpoint          string // empty: the local S3 server on S3Addr, objects in StateDir/s3
	S3AccessKey         string
	S3SecretKey         string
	Bucket              string

	S3Addr, APIAddr, ConsoleAddr string
	WarehousePath                string
	// WarehouseMemoryLimit is the memory_limit of the stack's own DuckDB (RAW, queries); empty:
	// dbt's DUCKDB_MEMORY_LIMIT.
	WarehouseMemoryLimit string
	// WarehouseThreads is the threads of the stack's own DuckDB; 0: DuckDB's default (one per core).
	WarehouseThreads int
	// TemplateParams set template parameters (such as DbtBuildOnLoad=false for a stack whose
	// gold follows the schedule only).
	TemplateParams map[string]string
	// DbtSchedule replaces the template's schedule locally (rate(1 minute) by default), so
	// gold follows the activity closely on one machine.
	DbtSchedule string
	// WebhookToken authenticates S3 event webhooks (versitygw's --event-webhook-url carries it as
	// the password of the URL's user info, sent as Basic auth); the console token when empty.
	WebhookToken string
	// DevSecretPath is the local HS256 secret the API and `fin token` share.
	DevSecretPath string
	Logger        *slog.Logger
}

// Stack is the running local stack.
type Stack struct {
	cfg     Config
	log     *slog.Logger
	tpl     *samtemplate.Template
	parts   *parts
	wh      *duckdb.Warehouse
	landing *landing.Handler
	loader  *loader.Handler
	capture capture.Metrics
	s3      *minio.Client // the stack's own (the capture's manifest)
	s3Creds s3local.Credentials
	objects loader.S3Objects // the loader's
	token   string
	codes   console.Codes // one-time codes of the console links printed
	loads   chan events.S3Event
	queues  map[string]*lambdalocal.Queue // the template's SQS queues, by URL
	status  *statusCache
	dlq     dlqCount // entries under dlq/, for the status
	// The console's records: the run log in StateDir/console, what writes to it, what it keeps
	// of each dbt build, and the charts' samples of the last hour.
	runLog   *runlog.Log
	recorder *recorder
	runs     *runCapture
	samples  console.Samples
	// publishedRows: rows loaded into RAW that a successful build has carried to gold since the
	// stack started (the throughput chart's gold stage).
	publishedRows atomic.Int64
	mu            sync.Mutex
	dbtRuns       []console.DbtRun
	// runResults is the latest dbt result of every node over this run of the stack (lineage view).
	runResults []byte
	closers    []io.Closer       // the functions' local log files
	failures   int               // invocations that failed every retry (each kept on disk), for the console
	partErr    map[string]string // the last failure of each supervised part

	// Built as the parts start, for the parts after them.
	brokers    []string // Kafka's bootstrap addresses
	clusterARN string   // the MSK cluster the mappings name
	embedded   bool     // the broker is the embedded one (the gate trims its log)
	producer   *kgo.Client
	fns        map[string]*lambdalocal.Function // the built functions by logical id
	gateway    *lambdalocal.HTTPGateway
	verifier   *api.Verifier  // the API's token check, for the console's actions
	apiAuth    api.AuthConfig // the API's token rules: the console's local sign-in signs with them

	ConsoleURL string
	APIURL     string
	S3URL      string
	// S3Credentials is the local S3's credentials file (empty with S3_ENDPOINT).
	S3Credentials string
	// Kafka is the bootstrap address of the broker the stack uses (the embedded one's random
	// loopback port), for any Kafka client: kcat, kafka-console-consumer, franz-go.
	Kafka string
}

// Up starts every part and returns once they are serving; the parts stop when ctx ends, and Wait
// returns their first error.
func Up(ctx context.Context, cfg Config) (*Stack, func() error, error) {
	s, err := newStack(cfg)
	if err != nil {
		return nil, nil, err
	}
	ctx, s.parts = startParts(ctx, s.log, s.partFailed)
	for _, start := range []func(context.Context) error{
		s.startBroker,       // Kafka, embedded or real
		s.startStorage,      // S3, and the warehouse
		s.startFunctions,    // the four functions, and the API's gateway
		s.startCapture,      // Postgres -> Kafka, acknowledged once landed
		s.startEventSources, // Kafka -> landing
		s.startLoads,        // S3 -> loader
		s.startSchedules,    // EventBridge -> dbt-runner, the API's housekeeping
		s.startQueues,       // SQS (loads that committed) -> dbt-runner
		s.startHTTP,         // the API, and the console
	} {
		if err := start(ctx); err != nil {
			s.parts.stop()
			s.closeLogs()
			if s.wh != nil {
				s.wh.Close()
			}
			if s.runLog != nil {
				s.runLog.Close()
			}
			return nil, nil, err
		}
	}
	return s, s.wait, nil
}

// newStack reads the template and checks it has the functions and events the stack wires.
func newStack(cfg Config) (*Stack, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	tpl, _, err := LoadAPITemplate(cfg.Template, cfg.DevSecretPath, cfg.TemplateParams)
	if err != nil {
		return nil, err
	}
	for _, id := range []string{apiFunction, landingFunction, loaderFunction, dbtFunction} {
		if tpl.Functions[id] == nil {
			return nil, fmt.Errorf("template %s has no function %s", cfg.Template, id)
		}
	}
	if len(tpl.Functions[landingFunction].Kafka) == 0 || len(tpl.Functions[loaderFunction].S3) == 0 {
		return nil, fmt.Errorf("template %s: %s needs a Kafka event and %s an S3 event", cfg.Template, landingFunction, loaderFunction)
	}
	return &Stack{cfg: cfg, log: log, tpl: tpl, loads: make(chan events.S3Event, 4096), partErr: map[string]string{},
		queues: lambdalocal.Queues(tpl)}, nil
}

// partFailed shows a supervised part's last failure on the console.
func (s *Stack) partFailed(name string, err error) {
	s.mu.Lock()
	s.partErr[name] = fmt.Sprintf("%v (restarting)", err)
	s.mu.Unlock()
}

// wait returns once every part has stopped, with the first error that stopped one.
func (s *Stack) wait() error {
	err := s.parts.wait()
	dbtrun.StopWorkers() // the warm dbt worker lets go of its Python process before we exit
	s.closeLogs()        // after the worker: a build's last lines still reach them
	s.wh.Close()
	s.runLog.Close() // after the recorder, which stopped with the parts
	return err
}

// startBroker starts Kafka: a real broker (KafkaBrokers), or the embedded one, which keeps its
// log in memory: nothing depends on it surviving a crash, as the capture confirms WAL positions
// only once the landing has committed them (see landedGate), and each incarnation of the broker
// lands under its own source id.
func (s *Stack) startBroker(ctx context.Context) error {
	s.brokers, s.clusterARN = s.cfg.KafkaBrokers, "arn:aws:kafka:us-east-1:000000000000:cluster/local/external"
	s.embedded = len(s.brokers) == 0
	if s.embedded {
		seeds, stop, err := kafka.StartEmbedded(ctx, kafka.EmbeddedConfig{})
		if err != nil {
			return err
		}
		context.AfterFunc(ctx, stop)
		s.brokers = seeds
		s.clusterARN = "arn:aws:kafka:us-east-1:000000000000:cluster/local/" + uuid.NewString()
	}
	s.Kafka = strings.Join(s.brokers, ",")
	return nil
}

// startStorage starts S3 (the local server, whose ObjectCreated events go to the loader as S3
// would send them, or S3Endpoint) and opens the warehouse: this process holds RAW, where loads
// land whatever dbt does, and attaches dbt's models file for queries, lending it to dbt for each
// build.
func (s *Stack) startStorage(ctx context.Context) error {
	s.S3URL, s.s3Creds = s.cfg.S3Endpoint, s3local.Credentials{AccessKeyID: s.cfg.S3AccessKey, SecretAccessKey: s.cfg.S3SecretKey}
	var err error
	if s.S3URL == "" {
		s.S3Credentials = s3local.CredentialsPath(s.cfg.StateDir)
		if s.s3Creds, err = s3local.EnsureCredentials(s.S3Credentials); err != nil {
			return err
		}
		srv, err := s3local.Start(ctx, s.cfg.S3Addr, filepath.Join(s.cfg.StateDir, "s3"), s.objectCreated,
			s3local.WithBuckets(s.cfg.Bucket), s3local.WithCredentials(s.s3Creds), s3local.WithLogger(s.log))
		if err != nil {
			return fmt.Errorf("local S3 on %s: %w", s.cfg.S3Addr, err)
		}
		s.S3URL = srv.URL
	}
	if s.s3, err = objectstore.Open(objectstore.Config{Endpoint: s.S3URL, AccessKey: s.s3Creds.AccessKeyID, SecretKey: s.s3Creds.SecretAccessKey}); err != nil {
		return err
	}
	// The stack's DuckDB takes dbt's memory limit unless told: one setting bounds each DuckDB.
	limit := cmp.Or(s.cfg.WarehouseMemoryLimit, FunctionEnv(s.tpl, dbtFunction, settings.DBT, nil, nil).Get("DUCKDB_MEMORY_LIMIT"))
	if s.wh, err = duckdb.Open(ctx, duckdb.RawPath(s.cfg.WarehousePath), nil, duckdb.WithModels(s.cfg.WarehousePath),
		duckdb.WithPublication(publishedMarts()...), duckdb.WithMemoryLimit(limit), duckdb.WithThreads(s.cfg.WarehouseThreads)); err != nil {
		return err
	}
	if s.token, err = duckdb.EnsureToken(duckdb.TokenPath(s.cfg.WarehousePath)); err != nil {
		return err
	}
	if err := s.openRunLog(); err != nil {
		return err
	}
	s.parts.run("console records", func() error { s.recorder.run(ctx); return nil })
	started := time.Now() // nothing of this process is loaded yet
	s.parts.run("console loads backfill", func() error {
		if err := s.backfillLoads(ctx, started, s.ledgerSince); err != nil && ctx.Err() == nil {
			s.log.Warn("console: loads not recorded from the ledger", "err", err)
		}
		return nil
	})
	return nil
}

// startFunctions builds the functions, each by the constructor its Lambda's main uses, and the
// API's gateway with the template's JWT authorizer.
func (s *Stack) startFunctions(ctx context.Context) error {
	landS3, err := s.landingS3()
	if err != nil {
		return err
	}
	if s.landing, err = s.buildLanding(dlqWatch{batchRecorder{landS3, s.recorder}, &s.dlq}); err != nil {
		return err
	}
	s.objects = loader.S3Objects{Client: s.loaderS3()}
	if s.loader, err = s.buildLoader(loadRecorder{s.wh, s.recorder}, s.objects); err != nil {
		return err
	}
	apiF, err := s.buildAPI(ctx, &history.Reader{Q: duckdb.Published{Warehouse: s.wh}, Schema: duckdb.PublishedSchema("gold")})
	if err != nil {
		return err
	}
	s.apiAuth = apiF.Auth
	if s.verifier, err = api.NewVerifier(ctx, apiF.Auth); err != nil {
		return err
	}
	dbtFn, err := s.buildDbt(ctx)
	if err != nil {
		return err
	}
	s.fns = map[string]*lambdalocal.Function{apiFunction: s.function(apiFunction, apiF.Handler()),
		landingFunction: s.function(landingFunction, s.landing.Handle),
		loaderFunction:  s.function(loaderFunction, s.loader.Handle), dbtFunction: dbtFn}
	s.gateway, err = lambdalocal.NewHTTPGateway(s.tpl.HTTPAPIs, s.tpl.Functions[apiFunction].HTTP, s.fns[apiFunction].HTTP(),
		func(c samtemplate.JWTAuthorizer) (lambdalocal.Authorizer, error) {
			return lambdalocal.JWTAuthorizer(ctx, c, apiF.Auth.Secret)
		})
	if err != nil {
		return fmt.Errorf("template %s, %s: %w", s.cfg.Template, apiFunction, err)
	}
	return nil
}

// startCapture starts change capture into Kafka, each change acknowledged to Postgres once landed.
func (s *Stack) startCapture(ctx context.Context) error {
	var err error
	if s.producer, err = kafka.NewClient(s.brokers); err != nil {
		return err
	}
	context.AfterFunc(ctx, s.producer.Close)
	gate := newLandedGate(s.producer, s.producer, groupsByTopic(s.mappings()), s.log)
	gate.retain, gate.retainBytes = s.cfg.KafkaRetention, s.cfg.KafkaRetentionBytes
	s.parts.run("landed gate", func() error { gate.run(ctx, s.embedded); return nil })
	s.parts.supervise("capture", func() error { return capture.Run(ctx, s.captureConfig(), gate) })
	return nil
}

// startEventSources runs the MSK event source mappings into the landing: one consumer group per
// mapping, each mapping one topic, with the template's batching.
func (s *Stack) startEventSources(ctx context.Context) error {
	for _, esm := range s.mappings() {
		s.parts.supervise("event source mapping "+esm.GroupID, func() error {
			return eventsource.Run(ctx, esm, s.fns[landingFunction])
		})
	}
	return nil
}

// mappings are the landing's event source mappings on the stack's broker.
func (s *Stack) mappings() []eventsource.Config {
	return lambdalocal.KafkaMappings(s.tpl.Functions[landingFunction], s.brokers, s.clusterARN, s.log)
}

// startLoads delivers S3 notifications to the loader, as asynchronous invocations with Lambda's
// two retries, one lane per bronze table (loadLane); a listing catch-up loads anything whose event
// was missed (a crash between put and load).
func (s *Stack) startLoads(ctx context.Context) error {
	loadFn := s.fns[loaderFunction]
	s.parts.run("loader", func() error {
		return lambdalocal.DeliverAsyncLanes(ctx, loadFn, s.loads, loadLane,
			func(ev events.S3Event, err error) { s.keepFailed(loadFn.Name, ev, err) }, s.log)
	})
	s.parts.run("catch-up", func() error { return s.catchUp(ctx) })
	return nil
}

// startSchedules runs the template's schedules: dbt-runner's (every minute locally:
// cfg.DbtSchedule), and the API's housekeeping.
func (s *Stack) startSchedules(ctx context.Context) error {
	return s.runSchedules(ctx, s.fns, lambdalocal.RealClock, s.parts.run)
}

// startQueues runs the template's SQS event sources: loads that committed -> dbt-runner.
func (s *Stack) startQueues(ctx context.Context) error {
	return s.runQueues(ctx, s.fns, s.parts.run)
}

// startHTTP serves the API behind its gateway, and the console with its status, DLQ, SQL and
// S3-webhook endpoints.
func (s *Stack) startHTTP(ctx context.Context) error {
	apiLn, err := net.Listen("tcp", s.cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("API address %s: %w", s.cfg.APIAddr, err)
	}
	s.APIURL = "http://" + apiLn.Addr().String()
	s.status = newStatusCache(s)
	s.parts.run("status", func() error { s.status.run(ctx); return nil })
	s.parts.run("charts", func() error { s.sample(ctx, 5*time.Second); return nil })
	conLn, err := net.Listen("tcp", s.cfg.ConsoleAddr)
	if err != nil {
		apiLn.Close()
		return fmt.Errorf("console address %s: %w", s.cfg.ConsoleAddr, err)
	}
	s.ConsoleURL = "http://" + conLn.Addr().String()
	extra, err := s.consoleHandlers()
	if err != nil {
		apiLn.Close()
		conLn.Close()
		return err
	}
	s.serve(ctx, "api", apiLn, s.gateway)
	s.serve(ctx, "console", conLn, console.Handler(s.token, &s.codes, s.status.get, extra))
	return nil
}

// consoleHandlers are the console's endpoints beyond its page and status.
func (s *Stack) consoleHandlers() (map[string]http.Handler, error) {
	extra := s.dlqHandlers()
	extra["POST /sql"] = s.wh.SQLHandler(s.token)
	extra["POST /s3-events"] = s3local.WebhookHandler(cmp.Or(s.cfg.WebhookToken, s.token), s.objectCreated, s.log)
	maps.Copy(extra, s.lineageHandlers())
	maps.Copy(extra, s.runsHandlers())
	actions, err := s.actionHandlers(s.verifier)
	if err != nil {
		return nil, err
	}
	maps.Copy(extra, actions)
	return extra, nil
}

// serve serves h on ln until ctx ends, then shuts the server down gracefully.
func (s *Stack) serve(ctx context.Context, name string, ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	context.AfterFunc(ctx, func() {
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		srv.Shutdown(sctx)
	})
	s.parts.run(name+" server", func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
}

// captureConfig is the capture's configuration in the stack. Its manifest lives in the lake
// (under _manifest/ in the bronze bucket, outside the loader's bronze/ prefix), so a lake that is
// deleted (make clean) or replaced takes the record of its snapshots with it, and the capture
// snapshots again what the new lake lacks.
func (s *Stack) captureConfig() capture.Config {
	return capture.Config{DatabaseURL: s.cfg.DatabaseURL, Slot: s.cfg.Slot, Metrics: &s.capture, Logger: s.log,
		Manifest: objectstore.Objects{Client: s.s3, Bucket: s.cfg.Bucket}}
}

// closeLogs closes the functions' local log files.
func (s *Stack) closeLogs() {
	for _, c := range s.closers {
		c.Close()
	}
}

// ConsoleLink is a link that opens the console once: printed instead of the token, which would
// stay in a terminal's scrollback.
func (s *Stack) ConsoleLink() string { return s.ConsoleURL + "/?code=" + s.codes.New() }

// publishedMarts are the marts the API's history reads, which the warehouse publishes after each
// build so that those reads never wait for dbt.
func publishedMarts() []duckdb.View {
	var views []duckdb.View
	for _, m := range history.Marts() {
		views = append(views, duckdb.View{Name: "gold." + m.Table, Key: m.Key})
	}
	return views
}
