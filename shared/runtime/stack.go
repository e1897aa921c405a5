package runtime

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"

	"github.com/fin-orchestrator/fin-orchestrator/shared/api"
	"github.com/fin-orchestrator/fin-orchestrator/shared/capture"
	"github.com/fin-orchestrator/fin-orchestrator/shared/console"
	"github.com/fin-orchestrator/fin-orchestrator/shared/dbtrun"
	"github.com/fin-orchestrator/fin-orchestrator/shared/eventsource"
	"github.com/fin-orchestrator/fin-orchestrator/shared/history"
	"github.com/fin-orchestrator/fin-orchestrator/shared/kafka"
	"github.com/fin-orchestrator/fin-orchestrator/shared/landing"
	"github.com/fin-orchestrator/fin-orchestrator/shared/loader"
	"github.com/fin-orchestrator/fin-orchestrator/shared/objectstore"
	"github.com/fin-orchestrator/fin-orchestrator/shared/s3local"
	"github.com/fin-orchestrator/fin-orchestrator/shared/samtemplate"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// Logical ids of the template's functions, and the handlers the local runtime gives them.
const (
	apiFunction     = "ApiFunction"
	landingFunction = "CdcLandingFunction"
	loaderFunction  = "WarehouseLoaderFunction"
	dbtFunction     = "DbtRunnerFunction"
)

// StackConfig is where each part of the local stack is, and which real parts replace the
// embedded defaults.
type StackConfig struct {
	Template    string // template.yaml
	Root        string // the repository (dbt/ and .venv/ live there)
	StateDir    string // .fin: Kafka log, S3 objects, warehouse, tokens
	DatabaseURL string
	Pool        *pgxpool.Pool
	// Slot is the capture's replication slot; slot names are cluster-wide, so each database
	// captured on one cluster needs its own.
	Slot string

	KafkaBrokers []string // empty: the embedded broker, its log in StateDir/kafka
	S3Endpoint   string   // empty: the local S3 server on S3Addr, objects in StateDir/s3
	S3AccessKey  string
	S3SecretKey  string
	Bucket       string

	S3Addr, APIAddr, ConsoleAddr string
	WarehousePath                string
	// DbtSchedule replaces the template's schedule locally (rate(1 minute) by default), so
	// gold follows the activity closely on one machine.
	DbtSchedule string
	// WebhookToken authenticates S3 event webhooks (versitygw's --event-webhook-url ...?token=);
	// the console token when empty.
	WebhookToken string
	// DevSecretPath is the local HS256 secret the API and `fin token` share.
	DevSecretPath string
	Logger        *slog.Logger
}

// Stack is the running local stack.
type Stack struct {
	cfg        StackConfig
	log        *slog.Logger
	tpl        *samtemplate.Template
	wh         *duckdb.Warehouse
	landing    *landing.Handler
	loader     *loader.Handler
	capture    capture.Metrics
	s3         *minio.Client
	token      string
	loads      chan events.S3Event
	status     *statusCache
	mu         sync.Mutex
	dbtRuns    []console.DbtRun
	failures   []string          // invocations that failed every retry, for the console
	partErr    map[string]string // the last failure of each supervised part
	ConsoleURL string
	APIURL     string
	S3URL      string
	// Kafka is the bootstrap address of the broker the stack uses (the embedded one's random
	// loopback port), for any Kafka client: kcat, kafka-console-consumer, franz-go.
	Kafka string
}

// Up starts every part and returns once they are serving; the parts stop when ctx ends, and Wait
// returns their first error.
func Up(ctx context.Context, cfg StackConfig) (*Stack, func() error, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	// The API and the template's JWT authorizer take their issuer and audience from one place,
	// as in AWS, where both come from the stack's parameters.
	auth, err := api.AuthConfigFromEnv(cfg.DevSecretPath)
	if err != nil {
		return nil, nil, err
	}
	tpl, err := LoadTemplate(cfg.Template, map[string]string{"JwtIssuer": auth.Issuer, "JwtAudience": auth.Audience})
	if err != nil {
		return nil, nil, err
	}
	for _, id := range []string{apiFunction, landingFunction, loaderFunction, dbtFunction} {
		if tpl.Functions[id] == nil {
			return nil, nil, fmt.Errorf("template %s has no function %s", cfg.Template, id)
		}
	}
	if len(tpl.Functions[landingFunction].Kafka) == 0 || len(tpl.Functions[loaderFunction].S3) == 0 {
		return nil, nil, fmt.Errorf("template %s: %s needs a Kafka event and %s an S3 event", cfg.Template, landingFunction, loaderFunction)
	}
	s := &Stack{cfg: cfg, log: log, tpl: tpl, loads: make(chan events.S3Event, 4096), partErr: map[string]string{}}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	run := func(name string, fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil && ctx.Err() == nil {
				log.Error("part stopped", "part", name, "err", err)
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	// supervise keeps a long-running part going: when it fails it is logged, shown on the
	// console, and restarted with backoff (a capture whose slot is still held by a dying
	// connection, a broker restarting), as a managed service would be.
	supervise := func(name string, fn func() error) {
		run(name, func() error {
			backoff := time.Second
			for {
				start := time.Now()
				err := fn()
				if ctx.Err() != nil {
					return nil
				}
				if time.Since(start) > time.Minute {
					backoff = time.Second
				}
				log.Error("part failed; restarting", "part", name, "in", backoff, "err", err)
				s.mu.Lock()
				s.partErr[name] = fmt.Sprintf("%v (restarting)", err)
				s.mu.Unlock()
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 30*time.Second)
			}
		})
	}
	fail := func(err error) (*Stack, func() error, error) {
		cancel()
		wg.Wait()
		if s.wh != nil {
			s.wh.Close()
		}
		return nil, nil, err
	}

	// Kafka: the embedded broker keeps its log on disk, so a restart finds every topic and offset.
	// Kafka: a real broker (KAFKA_BROKERS), or the embedded one, which keeps its log in memory:
	// nothing depends on it surviving a crash, as the capture confirms WAL positions only once
	// the landing has committed them (see landedGate), and each incarnation of the broker lands
	// under its own source id.
	brokers, clusterARN := cfg.KafkaBrokers, "arn:aws:kafka:us-east-1:000000000000:cluster/local/external"
	embedded := len(brokers) == 0
	if embedded {
		seeds, stop, err := kafka.StartEmbedded(ctx, kafka.EmbeddedConfig{})
		if err != nil {
			return fail(err)
		}
		context.AfterFunc(ctx, stop)
		brokers = seeds
		clusterARN = "arn:aws:kafka:us-east-1:000000000000:cluster/local/" + uuid.NewString()
	}
	s.Kafka = strings.Join(brokers, ",")

	// S3: the local server, whose ObjectCreated events go to the loader as S3 would send them.
	if cfg.S3Endpoint == "" {
		srv, err := s3local.Start(ctx, cfg.S3Addr, filepath.Join(cfg.StateDir, "s3"), s.objectCreated,
			s3local.WithBuckets(cfg.Bucket), s3local.WithLogger(log))
		if err != nil {
			return fail(fmt.Errorf("local S3 on %s: %w", cfg.S3Addr, err))
		}
		s.S3URL = srv.URL
	} else {
		s.S3URL = cfg.S3Endpoint
	}
	s.s3, err = objectstore.Open(objectstore.Config{Endpoint: s.S3URL, AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey})
	if err != nil {
		return fail(err)
	}

	// The warehouse: this process holds RAW, where loads land whatever dbt does, and attaches
	// dbt's models file for queries, lending it to dbt for each build.
	if s.wh, err = duckdb.Open(ctx, duckdb.RawPath(cfg.WarehousePath), nil, duckdb.WithModels(cfg.WarehousePath)); err != nil {
		return fail(err)
	}
	if s.token, err = duckdb.EnsureToken(duckdb.TokenPath(cfg.WarehousePath)); err != nil {
		return fail(err)
	}

	// The functions, with the handlers their Lambda mains build.
	if s.landing, err = landing.NewHandler(landing.Config{Bucket: cfg.Bucket, Logger: log}, s.s3); err != nil {
		return fail(err)
	}
	landFn := s.function(landingFunction, s.landing.Handle)
	objects := loader.S3Objects{Client: s.sdkS3()}
	s.loader = loader.NewHandler(s.wh, objects, loader.WithLogger(log))
	loadFn := s.function(loaderFunction, s.loader.Handle)
	app, err := api.New(ctx, api.Config{Pool: cfg.Pool, Auth: auth, History: history.New(s.wh)})
	if err != nil {
		return fail(err)
	}
	apiFn := s.function(apiFunction, api.LambdaHandler(app))
	gw, err := NewHTTPGateway(tpl.HTTPAPIs, tpl.Functions[apiFunction].HTTP, httpFunc(apiFn),
		func(c samtemplate.JWTAuthorizer) (Authorizer, error) { return JWTAuthorizer(ctx, c, auth.Secret) })
	if err != nil {
		return fail(fmt.Errorf("template %s, %s: %w", cfg.Template, apiFunction, err))
	}
	// dbt reads RAW from a snapshot the stack takes before each build (profiles.yml attaches it
	// read-only under the RAW catalog's name, and the sources read that database).
	snapshot := duckdb.SnapshotPath(cfg.WarehousePath)
	dbtConsole, err := openConsoleLog(filepath.Join(cfg.StateDir, "dbt", "logs", "console.log"), 10<<20)
	if err != nil {
		return fail(err)
	}
	dbtFn := s.function(dbtFunction, dbtrun.Handler(dbtrun.Config{
		DBT: filepath.Join(cfg.Root, ".venv", "bin", "dbt"), Nice: dbtNice, ProjectDir: filepath.Join(cfg.Root, "dbt"),
		Target: "duckdb", WorkDir: filepath.Join(cfg.StateDir, "dbt"), Output: dbtConsole,
		Env: []string{"WAREHOUSE_PATH=" + cfg.WarehousePath, "RAW_SNAPSHOT_PATH=" + snapshot, "RAW_DATABASE=" + duckdb.RawCatalog},
		// One dbt thread per core, at most the profile's four: dbt's work between queries is
		// Python, one thread at a time, and more threads than cores only made a scheduled build
		// wait longer for it. DBT_THREADS in the environment wins.
		EnvDefaults: []string{"DBT_THREADS=" + strconv.Itoa(min(goruntime.GOMAXPROCS(0), 4))},
		Lock:        warehouseTurn{wh: s.wh, snapshot: snapshot, log: log},
	}, log))

	// Change capture into Kafka, acknowledged once landed.
	producer, err := kafka.NewClient(brokers)
	if err != nil {
		return fail(err)
	}
	context.AfterFunc(ctx, producer.Close)
	mappings := kafkaMappings(tpl.Functions[landingFunction], brokers, clusterARN, log)
	gate := newLandedGate(producer, producer, groupsByTopic(mappings), log)
	run("landed gate", func() error { gate.run(ctx, embedded); return nil })
	supervise("capture", func() error {
		return capture.Run(ctx, s.captureConfig(), gate)
	})

	// MSK event source mappings -> landing: one consumer group per mapping, each mapping one
	// topic, with the template's batching.
	for _, esm := range mappings {
		supervise("event source mapping "+esm.GroupID, func() error { return eventsource.Run(ctx, esm, landFn) })
	}

	// S3 notifications -> loader, as asynchronous invocations with Lambda's two retries; a
	// listing catch-up loads anything whose event was missed (a crash between put and load).
	run("loader", func() error { return s.deliverLoads(ctx, loadFn) })
	run("catch-up", func() error { return s.catchUp(ctx, objects) })

	// Schedules -> dbt-runner.
	for _, ev := range tpl.Functions[dbtFunction].Schedules {
		if cfg.DbtSchedule != "" {
			ev.Expression = cfg.DbtSchedule
		}
		run("dbt schedule", func() error {
			return RunSchedule(ctx, ev, dbtFn, s.recordDbtRun)
		})
	}

	// HTTP: the API behind its gateway, and the console.
	apiLn, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return fail(fmt.Errorf("API address %s: %w", cfg.APIAddr, err))
	}
	s.APIURL = "http://" + apiLn.Addr().String()
	s.status = newStatusCache(s)
	run("status", func() error { s.status.run(ctx); return nil })
	extra := s.dlqHandlers(producer)
	for k, v := range map[string]http.Handler{
		"POST /sql":       s.wh.SQLHandler(s.token),
		"POST /s3-events": s3local.WebhookHandler(cmp.Or(cfg.WebhookToken, s.token), s.objectCreated, log),
	} {
		extra[k] = v
	}
	conLn, err := net.Listen("tcp", cfg.ConsoleAddr)
	if err != nil {
		apiLn.Close()
		return fail(fmt.Errorf("console address %s: %w", cfg.ConsoleAddr, err))
	}
	s.ConsoleURL = "http://" + conLn.Addr().String()
	for name, pair := range map[string]struct {
		ln net.Listener
		h  http.Handler
	}{"api": {apiLn, gw}, "console": {conLn, console.Handler(s.token, s.status.get, extra)}} {
		srv := &http.Server{Handler: pair.h, ReadHeaderTimeout: 10 * time.Second}
		context.AfterFunc(ctx, func() {
			sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
			defer c()
			srv.Shutdown(sctx)
		})
		run(name+" server", func() error {
			if err := srv.Serve(pair.ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}

	wait := func() error {
		<-ctx.Done()
		wg.Wait()
		dbtrun.StopWorkers() // the warm dbt worker lets go of its Python process before we exit
		dbtConsole.Close()   // after the worker: a build's last lines still reach it
		s.wh.Close()
		select {
		case err := <-errc:
			return err
		default:
			return nil
		}
	}
	return s, wait, nil
}

// captureConfig is the capture's configuration in the stack. Its manifest lives in the lake
// (under _manifest/ in the bronze bucket, outside the loader's bronze/ prefix), so a lake that is
// deleted (make clean) or replaced takes the record of its snapshots with it, and the capture
// snapshots again what the new lake lacks.
func (s *Stack) captureConfig() capture.Config {
	return capture.Config{DatabaseURL: s.cfg.DatabaseURL, Slot: s.cfg.Slot, Metrics: &s.capture, Logger: s.log,
		Manifest: objectstore.Objects{Client: s.s3, Bucket: s.cfg.Bucket}}
}

// Token is the console and SQL token.
func (s *Stack) Token() string { return s.token }

// function wraps a handler with the template's timeout for that function.
func (s *Stack) function(id string, handler any) *Function {
	return NewFunction(id, handler, time.Duration(s.tpl.Functions[id].Timeout)*time.Second)
}

// httpFunc calls a function with an HTTP API event and reads its response.
func httpFunc(fn *Function) HTTPFunc {
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		out, err := fn.Call(ctx, ev)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			return resp, fmt.Errorf("%s returned no HTTP API response: %w", fn.Name, err)
		}
		return resp, nil
	}
}

// objectCreated filters an S3 notification by the loader's S3 event rules (prefix, suffix),
// as the bucket's notification configuration would, and queues the ones that match.
func (s *Stack) objectCreated(ev events.S3Event) {
	var keep []events.S3EventRecord
	for _, r := range ev.Records {
		for _, rule := range s.tpl.Functions[loaderFunction].S3 {
			key := r.S3.Object.URLDecodedKey
			if key == "" {
				key = r.S3.Object.Key
			}
			if strings.HasPrefix(key, rule.Prefix) && strings.HasSuffix(key, rule.Suffix) {
				keep = append(keep, r)
				break
			}
		}
	}
	if len(keep) > 0 {
		s.loads <- events.S3Event{Records: keep}
	}
}

// deliverLoads invokes the loader for each queued notification; a failed invocation is retried
// twice (Lambda's asynchronous retries), then written to StateDir/failed-invocations.
func (s *Stack) deliverLoads(ctx context.Context, fn *Function) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-s.loads:
			var err error
			for attempt, wait := 0, time.Second; attempt < 3; attempt, wait = attempt+1, wait*2 {
				if _, err = fn.Call(ctx, ev); err == nil || ctx.Err() != nil {
					break
				}
				s.log.Warn("loader invocation failed; retrying", "attempt", attempt+1, "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(wait):
				}
			}
			if err != nil && ctx.Err() == nil {
				s.keepFailed(fn.Name, ev, err)
			}
		}
	}
}

func (s *Stack) keepFailed(fn string, ev any, cause error) {
	dir := filepath.Join(s.cfg.StateDir, "failed-invocations")
	os.MkdirAll(dir, 0o750)
	body, _ := json.Marshal(map[string]any{"function": fn, "error": cause.Error(), "event": ev, "time": time.Now().UTC()})
	name := filepath.Join(dir, fmt.Sprintf("%s-%d.json", fn, time.Now().UnixNano()))
	if err := os.WriteFile(name, body, 0o640); err != nil {
		s.log.Error("cannot keep failed invocation", "err", err)
	}
	s.mu.Lock()
	s.failures = append(s.failures, fmt.Sprintf("%s: %v", fn, cause))
	s.mu.Unlock()
	s.log.Error("invocation failed after retries; kept for replay", "function", fn, "file", name, "err", cause)
}

// catchUp has the loader load, at start and every 30 s, every bronze object its ledger does not
// hold: S3 notifications are at-least-once at best, and a crash between an object's write and its
// load would otherwise leave it unloaded.
func (s *Stack) catchUp(ctx context.Context, objects loader.S3Objects) error {
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		if err := s.loader.CatchUp(ctx, s.cfg.Bucket, objects); err != nil && ctx.Err() == nil {
			s.log.Warn("catch-up", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// sdkS3 is the AWS SDK client the loader reads objects with, pointed at the stack's S3.
func (s *Stack) sdkS3() *s3.Client {
	key, secret := s.cfg.S3AccessKey, s.cfg.S3SecretKey
	if key == "" {
		key, secret = "local", "local"
	}
	return s3.New(s3.Options{Region: s3local.Region, BaseEndpoint: aws.String(s.S3URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(key, secret, "")})
}

func (s *Stack) recordDbtRun(out []byte, err error) {
	var sum dbtrun.Summary
	json.Unmarshal(out, &sum)
	run := console.DbtRun{At: time.Now(), OK: err == nil, Models: sum.ModelsBuilt, TestsPassed: sum.TestsPassed,
		TestsFailed: sum.TestsFailed, Seconds: sum.WallSeconds}
	if err != nil {
		run.Failures = append(run.Failures, err.Error())
	}
	s.mu.Lock()
	s.dbtRuns = append([]console.DbtRun{run}, s.dbtRuns...)
	if len(s.dbtRuns) > 20 {
		s.dbtRuns = s.dbtRuns[:20]
	}
	s.mu.Unlock()
}

// dbtNice is the CPU priority dbt runs at locally: a build is batch work that can take both
// cores for 20 s, and at the default priority it starved the capture, landing and loads that
// RAW's freshness depends on (p95 2-3 s instead of about 1 s on a busy machine).
const dbtNice = 10

// warehouseTurn prepares dbt's turn: a snapshot of RAW for dbt to read, and the models file for
// it to write. Loads go on into RAW meanwhile; queries that need a model wait for dbt.
type warehouseTurn struct {
	wh       *duckdb.Warehouse
	snapshot string
	log      *slog.Logger
}

func (t warehouseTurn) Acquire(ctx context.Context) (func(), error) {
	st, err := t.wh.Snapshot(ctx, t.snapshot)
	if err != nil {
		return nil, err
	}
	// Loads wait for the snapshot: say so when that is long enough to show in freshness.
	paused, level := st.Wait+st.Checkpoint+st.Copy, slog.LevelInfo
	if paused > time.Second {
		level = slog.LevelWarn
	}
	t.log.Log(ctx, level, "RAW snapshot for dbt", "file", t.snapshot, "bytes", st.Bytes, "loads_paused_s", paused.Seconds(),
		"wait_s", st.Wait.Seconds(), "checkpoint_s", st.Checkpoint.Seconds(), "copy_s", st.Copy.Seconds())
	resume, err := t.wh.LendModels(ctx)
	if err != nil {
		return nil, err
	}
	return func() {
		if err := resume(context.WithoutCancel(ctx)); err != nil {
			t.log.Error("attach the models file after dbt", "err", err)
		}
	}, nil
}
