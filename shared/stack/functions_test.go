package stack

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/minio/minio-go/v7"
	"go.yaml.in/yaml/v3"

	"github.com/fin-orchestrator/fin-orchestrator/shared/api"
	"github.com/fin-orchestrator/fin-orchestrator/shared/emf"
	"github.com/fin-orchestrator/fin-orchestrator/shared/lambdalocal"
	"github.com/fin-orchestrator/fin-orchestrator/shared/pgtest"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
)

const templatePath = "../../template.yaml"

// testStack is a stack that has read the repository's template.yaml and builds functions, with
// nothing started.
func testStack(t *testing.T, cfg Config) *Stack {
	t.Helper()
	tpl, err := LoadTemplate(templatePath, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.StateDir = t.TempDir()
	s := &Stack{cfg: cfg, tpl: tpl, log: slog.New(slog.DiscardHandler), queues: lambdalocal.Queues(tpl)}
	t.Cleanup(s.closeLogs)
	return s
}

// The housekeeping schedule template.yaml gives the API function, run by the local stack's
// schedules (what Up starts) into the function its Lambda's constructor builds, deletes expired
// idempotency keys and keeps the others.
func TestLocalScheduleReallyPurges(t *testing.T) {
	db := pgtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := testStack(t, Config{Pool: db.Pool, DevSecretPath: filepath.Join(t.TempDir(), "jwt-dev-secret")})
	if len(s.tpl.Functions[apiFunction].Schedules) == 0 {
		t.Fatalf("template.yaml gives %s no schedule: nothing purges expired idempotency keys", apiFunction)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO idempotency_keys (principal, idem_key, method, path, request_hash, expires_at)
		VALUES ('tester', 'expired', 'POST', '/customers', '\x00', now() - interval '1 minute'),
		       ('tester', 'current', 'POST', '/customers', '\x00', now() + interval '1 hour')`); err != nil {
		t.Fatal(err)
	}
	f, err := s.buildAPI(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		out []byte
		err error
	}
	results := make(chan result, 1)
	// The API function's answers, as the scheduler sees them.
	apiFn := lambdalocal.NewFunction(apiFunction, func(ctx context.Context, ev json.RawMessage) (any, error) {
		out, err := f.Handler()(ctx, ev)
		b, _ := json.Marshal(out)
		select {
		case results <- result{b, err}:
		default: // the first result is the one looked at
		}
		return out, err
	}, 15*time.Second)
	dbtFn := lambdalocal.NewFunction(dbtFunction, func(context.Context, events.EventBridgeEvent) error { return nil }, time.Second)
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	start := func(name string, fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}()
	}
	if err := s.runSchedules(runCtx, map[string]*lambdalocal.Function{apiFunction: apiFn}, lambdalocal.FastClock(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)), start); err == nil {
		t.Fatal("runSchedules without the dbt-runner: no error, so a scheduled function could go unrun")
	}
	if err := s.runSchedules(runCtx, map[string]*lambdalocal.Function{apiFunction: apiFn, dbtFunction: dbtFn}, lambdalocal.FastClock(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)), start); err != nil {
		t.Fatal(err)
	}
	var first result
	select {
	case first = <-results:
	case <-ctx.Done():
		t.Fatal("the schedule never invoked the API function")
	}
	stop()
	wg.Wait()
	var got api.HousekeepingResult
	if first.err != nil || json.Unmarshal(first.out, &got) != nil || got.Task != api.TaskPurgeIdempotencyKeys || got.Purged != 1 {
		t.Fatalf("first scheduled invocation: %s, %v; want the purge of 1 expired key", first.out, first.err)
	}
	var left []string
	rows, _ := db.Pool.Query(ctx, `SELECT idem_key FROM idempotency_keys ORDER BY idem_key`)
	for rows.Next() {
		var k string
		rows.Scan(&k)
		left = append(left, k)
	}
	if rows.Err() != nil || !slices.Equal(left, []string{"current"}) {
		t.Fatalf("keys left: %v (%v), want only the current one", left, rows.Err())
	}
}

// An event the API function does not know is an error naming it, never an HTTP request.
func TestAPIFunctionRefusesUnknownHousekeeping(t *testing.T) {
	db := pgtest.New(t)
	s := testStack(t, Config{Pool: db.Pool, DevSecretPath: filepath.Join(t.TempDir(), "jwt-dev-secret")})
	f, err := s.buildAPI(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.function(apiFunction, f.Handler()).Invoke(context.Background(), []byte(`{"housekeeping": "drop-everything"}`))
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("drop-everything")) {
		t.Fatalf("unknown housekeeping task: %v, want an error naming it", err)
	}
}

type putter struct{ keys []string }

func (p *putter) PutObject(_ context.Context, _, key string, r io.Reader, _ int64, _ minio.PutObjectOptions) (minio.UploadInfo, error) {
	io.Copy(io.Discard, r)
	p.keys = append(p.keys, key)
	return minio.UploadInfo{Key: key}, nil
}

type noWarehouse struct{}

func (noWarehouse) Loaded(context.Context, string, string) (bool, error) { return false, nil }
func (noWarehouse) Load(context.Context, warehouse.Object) (warehouse.Result, error) {
	return warehouse.Result{}, nil
}

// The local stack's landing and loader, built by their Lambdas' constructor, write Embedded
// Metric Format lines as the Lambdas do (to a file in place of CloudWatch), carrying every metric
// template.yaml's alarms and dashboard read for that function.
func TestLocalFunctionsWriteTheirLambdasMetrics(t *testing.T) {
	s := testStack(t, Config{Bucket: "lake"})
	ctx := context.Background()
	land, err := s.buildLanding(&putter{})
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	if _, err := s.function(landingFunction, land.Handle).Call(ctx, events.KafkaEvent{EventSource: "aws:kafka",
		EventSourceARN: "arn:aws:kafka:us-east-1:000000000000:cluster/local/test",
		Records: map[string][]events.KafkaRecord{"fin.public.customers-0": {{Topic: "fin.public.customers", Offset: 7,
			Key: b64(`{"customer_id":"x"}`), Value: b64("not a change event {")}}}}); err != nil {
		t.Fatal(err)
	}
	load, err := s.buildLoader(noWarehouse{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var rec events.S3EventRecord
	rec.EventName, rec.S3.Bucket.Name, rec.S3.Object.Key = "ObjectCreated:Put", "lake", "dlq/customers/x.json"
	if _, err := s.function(loaderFunction, load.Handle).Call(ctx, events.S3Event{Records: []events.S3EventRecord{rec}}); err != nil {
		t.Fatal(err)
	}
	s.closeLogs()

	read := templateMetrics(t)
	for _, fn := range []string{"cdc-landing", "warehouse-loader"} {
		got := emfMetrics(t, filepath.Join(s.cfg.StateDir, "logs", fn+".emf"), fn)
		if len(read[fn]) == 0 {
			t.Fatalf("template.yaml reads no metric of %s: the check would prove nothing", fn)
		}
		for _, m := range read[fn] {
			if !slices.Contains(got, m) {
				t.Errorf("%s's local EMF lines have %v, not %s, which template.yaml's alarms or dashboard read", fn, got, m)
			}
		}
	}
}

// emfMetrics reads an EMF file and returns the metric names of its lines for function, failing
// on any line that is not EMF in the project's namespace.
func emfMetrics(t *testing.T, path, function string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("the local stack wrote no metrics for %s: %v", function, err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line struct {
			Function string `json:"Function"`
			AWS      struct {
				CloudWatchMetrics []struct {
					Namespace string
					Metrics   []struct{ Name string }
				}
			} `json:"_aws"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil || len(line.AWS.CloudWatchMetrics) != 1 ||
			line.AWS.CloudWatchMetrics[0].Namespace != emf.Namespace || line.Function != function {
			t.Fatalf("%s: %q is not an EMF line of %s in %s (%v)", path, sc.Text(), function, emf.Namespace, err)
		}
		for _, m := range line.AWS.CloudWatchMetrics[0].Metrics {
			names = append(names, m.Name)
		}
	}
	if len(names) == 0 {
		t.Fatalf("%s holds no metrics", path)
	}
	return names
}

// templateMetrics returns, per Function dimension, the FinOrchestrator metrics template.yaml's
// alarms and dashboard read.
func templateMetrics(t *testing.T) map[string][]string {
	t.Helper()
	body, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Resources map[string]struct {
			Type       string `yaml:"Type"`
			Properties struct {
				Namespace     string `yaml:"Namespace"`
				MetricName    string `yaml:"MetricName"`
				Dimensions    []struct{ Name, Value string }
				DashboardBody yaml.Node `yaml:"DashboardBody"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	add := func(fn, metric string) {
		if !slices.Contains(out[fn], metric) {
			out[fn] = append(out[fn], metric)
		}
	}
	for _, r := range doc.Resources {
		p := r.Properties
		switch r.Type {
		case "AWS::CloudWatch::Alarm":
			for _, d := range p.Dimensions {
				if p.Namespace == emf.Namespace && d.Name == "Function" {
					add(d.Value, p.MetricName)
				}
			}
		case "AWS::CloudWatch::Dashboard":
			var dash struct {
				Widgets []struct {
					Properties struct{ Metrics [][]any }
				}
			}
			if err := json.Unmarshal([]byte(p.DashboardBody.Value), &dash); err != nil {
				t.Fatalf("dashboard body: %v", err)
			}
			for _, w := range dash.Widgets {
				var prev []any
				for _, row := range w.Properties.Metrics {
					// "." repeats the element of the row above (CloudWatch's shorthand).
					for i := range row {
						if row[i] == "." && i < len(prev) {
							row[i] = prev[i]
						}
					}
					prev = row
					if len(row) >= 4 && row[0] == emf.Namespace && row[2] == "Function" {
						add(row[3].(string), row[1].(string))
					}
				}
			}
		}
	}
	return out
}
