package lambdalocal

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/golang-jwt/jwt/v5"

	"github.com/fin-orchestrator/fin-orchestrator/shared/oidctest"
	"github.com/fin-orchestrator/fin-orchestrator/shared/samtemplate"
)

// The package's own template (testdata/template.yaml), read and checked as a stack reads it.
func loadTestTemplate(t *testing.T) *samtemplate.Template {
	t.Helper()
	tpl, err := LoadTemplate("testdata/template.yaml", map[string]string{"Stage": "ci"})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"Shop", "Sink", "Indexer"} {
		if tpl.Functions[id] == nil {
			t.Fatalf("template has no function %s", id)
		}
	}
	return tpl
}

func TestLoadTemplateRefusesWhatAWSRefuses(t *testing.T) {
	if _, err := LoadTemplate("../../fixtures/aws-rejects/msk-three-topics.yaml", nil); err == nil {
		t.Fatal("a mapping of three topics passed; AWS refuses it")
	}
	if _, err := LoadTemplate("testdata/missing.yaml", nil); err == nil {
		t.Fatal("a missing template loaded")
	}
	if f := TemplateFunction(loadTestTemplate(t), "Sink", func() error { return nil }); f.Name != "Sink" || f.Timeout != 40*time.Second {
		t.Errorf("TemplateFunction: %s with timeout %v, want Sink with the template's 40s", f.Name, f.Timeout)
	}
}

// One mapping per MSK event, as Lambda makes them: its topic, its group (the logical ids when the
// template names none), the template's batching and start, and the function's timeout.
func TestKafkaMappingsFromTemplate(t *testing.T) {
	tpl := loadTestTemplate(t)
	ms := KafkaMappings(tpl.Functions["Sink"], []string{"127.0.0.1:1"}, "arn:aws:kafka:us-east-1:000000000000:cluster/x", nil)
	type mapping struct {
		topic, group string
		batch        int
		window       time.Duration
		latest       bool
	}
	var got []mapping
	for _, m := range ms {
		got = append(got, mapping{m.Topic, m.GroupID, m.BatchSize, m.BatchingWindow, m.StartAtLatest})
		if m.Timeout != 40*time.Second || m.EventSourceARN != "arn:aws:kafka:us-east-1:000000000000:cluster/x" || !slices.Equal(m.Brokers, []string{"127.0.0.1:1"}) {
			t.Errorf("mapping %s: %+v", m.GroupID, m)
		}
	}
	want := []mapping{{"shop.orders", "sink-ci-orders", 50, 3 * time.Second, true}, {"shop.refunds", "Sink-Refunds", 100, 0, false}}
	if !slices.Equal(got, want) {
		t.Errorf("mappings %+v, want %+v", got, want)
	}
}

// Only keys the function's S3 event filter matches reach it, as S3's notification configuration
// sends them.
func TestMatchS3ByTemplateRules(t *testing.T) {
	rules := loadTestTemplate(t).Functions["Indexer"].S3
	record := func(key, decoded string) events.S3EventRecord {
		var r events.S3EventRecord
		r.S3.Object.Key, r.S3.Object.URLDecodedKey = key, decoded
		return r
	}
	for _, c := range []struct {
		name string
		in   []events.S3EventRecord
		want []string
	}{
		{"match", []events.S3EventRecord{record("receipts/1.json", "")}, []string{"receipts/1.json"}},
		{"wrong suffix", []events.S3EventRecord{record("receipts/1.csv", "")}, nil},
		{"wrong prefix", []events.S3EventRecord{record("other/receipts/1.json", "")}, nil},
		{"decoded key decides", []events.S3EventRecord{record("receipts/a%20b.json", "receipts/a b.json")}, []string{"receipts/a%20b.json"}},
		{"mixed", []events.S3EventRecord{record("x.json", ""), record("receipts/2.json", "")}, []string{"receipts/2.json"}},
	} {
		kept, ok := MatchS3(rules, events.S3Event{Records: c.in})
		var keys []string
		for _, r := range kept.Records {
			keys = append(keys, r.S3.Object.Key)
		}
		if ok != (len(c.want) > 0) || !slices.Equal(keys, c.want) {
			t.Errorf("%s: kept %v (%v), want %v", c.name, keys, ok, c.want)
		}
	}
}

// A failed asynchronous invocation is retried twice, then handed on; one that succeeds on a retry
// is not.
func TestDeliverAsyncRetriesTwice(t *testing.T) {
	defer func(d time.Duration) { asyncBackoff = d }(asyncBackoff)
	asyncBackoff = time.Millisecond
	for _, c := range []struct {
		name       string
		failures   int
		wantCalls  int
		wantHanded bool
	}{
		{"succeeds at once", 0, 1, false},
		{"succeeds on the last retry", 2, 3, false},
		{"fails every attempt", 5, 3, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			calls := 0 // of the first event; only DeliverAsync's goroutine touches it until the sentinel is taken
			fn := NewFunction("Indexer", func(ev events.S3Event) error {
				if len(ev.Records) == 0 { // the sentinel
					return nil
				}
				calls++
				if calls <= c.failures {
					return errors.New("down")
				}
				return nil
			}, time.Second)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			queue, handed := make(chan events.S3Event), make(chan error, 1)
			go DeliverAsync(ctx, fn, queue, func(_ events.S3Event, err error) { handed <- err }, slog.New(slog.DiscardHandler))
			queue <- events.S3Event{Records: make([]events.S3EventRecord, 1)}
			queue <- events.S3Event{} // taken only once the first event's delivery is over
			var gotHanded bool
			select {
			case err := <-handed:
				gotHanded = err != nil
			default:
			}
			if calls != c.wantCalls || gotHanded != c.wantHanded {
				t.Errorf("%d calls, handed on %v; want %d calls, handed on %v", calls, gotHanded, c.wantCalls, c.wantHanded)
			}
		})
	}
}

// The template's schedule invokes its function with the schedule's Input; an expression given
// locally replaces the template's, and a bad one is an error, not a schedule silently not run.
func TestRunSchedulesFromTemplate(t *testing.T) {
	tpl := loadTestTemplate(t)
	got := make(chan string, 1)
	fn := TemplateFunction(tpl, "Shop", func(_ context.Context, ev json.RawMessage) error {
		select {
		case got <- string(ev):
		default:
		}
		return nil
	})
	for _, c := range []struct {
		expression string
		wantErr    bool
	}{{"", false}, {"rate(1 minute)", false}, {"rate(1 second)", true}} {
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		started := 0
		RunSchedules(ctx, tpl, "Shop", fn, c.expression, nil, FastClock(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)), func(name string, f func() error) {
			started++
			go func() { errc <- f() }()
		})
		if started != 1 {
			t.Fatalf("%q: %d schedules started, want the template's one", c.expression, started)
		}
		if c.wantErr {
			if err := <-errc; err == nil {
				t.Errorf("%q: the schedule ran", c.expression)
			}
		} else if ev := <-got; ev != `{"job": "nightly"}` {
			t.Errorf("%q: scheduled event %s, want the template's Input", c.expression, ev)
		}
		cancel()
	}
}

// The template's HttpApi: the public route answers without a token, the default JWT authorizer
// guards the other, and a token of the template's issuer and audience passes it.
func TestHTTPGatewayFromTemplate(t *testing.T) {
	tpl := loadTestTemplate(t)
	secret := []byte("test-secret-of-32-bytes-at-least!")
	fn := TemplateFunction(tpl, "Shop", func(ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: ev.RawPath}, nil
	})
	gw, err := NewHTTPGateway(tpl.HTTPAPIs, tpl.Functions["Shop"].HTTP, fn.HTTP(),
		func(c samtemplate.JWTAuthorizer) (Authorizer, error) {
			return JWTAuthorizer(context.Background(), c, secret)
		})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	token, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "shop-issuer", "aud": "shop-client",
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString(secret)
	for _, c := range []struct {
		path, token string
		status      int
	}{{"/health", "", 200}, {"/orders", "", 401}, {"/orders", "Bearer " + token, 200}, {"/elsewhere", "Bearer " + token, 404}} {
		if status, body := oidctest.Send(t, "GET", srv.URL+c.path, c.token); status != c.status {
			t.Errorf("GET %s (token %v): %d %s, want %d", c.path, c.token != "", status, body, c.status)
		}
	}
}

// lambdalocal emulates Lambda for any template: of this repository it may use only the readers of
// templates and schedules, the event source emulation and the generic retry rules, never a
// function or part of the stack.
func TestImportsNoStackPackage(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := []string{"awsrules", "eventsource", "lambdalocal", "retry", "samtemplate", "schedule"}
	for dep := range strings.Lines(string(out)) {
		name, ours := strings.CutPrefix(strings.TrimSpace(dep), "github.com/fin-orchestrator/fin-orchestrator/shared/")
		if ours && !slices.Contains(allowed, name) {
			t.Errorf("lambdalocal depends on shared/%s: a package of this stack", name)
		}
	}
}

// An event of one lane is invoked while another lane's event is still running, and each lane's
// events are invoked in the order they came.
func TestDeliverAsyncLanesRunBesideEachOther(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var order []string
	started := make(chan string, 8)
	fn := NewFunction("Loader", func(ev events.S3Event) error {
		name := ev.Records[0].S3.Object.Key
		mu.Lock()
		order = append(order, name)
		mu.Unlock()
		started <- name
		if name == "a1" {
			<-release
		}
		return nil
	}, 10*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	queue := make(chan events.S3Event, 8)
	ev := func(key string) events.S3Event {
		return events.S3Event{Records: []events.S3EventRecord{{S3: events.S3Entity{Object: events.S3Object{Key: key}}}}}
	}
	go DeliverAsyncLanes(ctx, fn, queue, func(e events.S3Event) string { return e.Records[0].S3.Object.Key[:1] },
		func(events.S3Event, error) {}, slog.New(slog.DiscardHandler))
	for _, k := range []string{"a1", "a2", "b1"} {
		queue <- ev(k)
	}
	got := map[string]bool{}
	for range 2 {
		select {
		case k := <-started:
			got[k] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("invoked %v while a1 runs; want a1 and b1: lane b waits for lane a", got)
		}
	}
	if !got["a1"] || !got["b1"] {
		t.Fatalf("invoked %v while a1 runs, want a1 and b1 (a2 waits for a1)", got)
	}
	close(release)
	select {
	case k := <-started:
		if k != "a2" {
			t.Fatalf("invoked %s, want a2", k)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a2 not invoked after a1 ended")
	}
	mu.Lock()
	defer mu.Unlock()
	if i, j := slices.Index(order, "a1"), slices.Index(order, "a2"); i < 0 || j < i {
		t.Errorf("order %v: a2 before a1", order)
	}
}
