package api

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/fin-orchestrator/fin-orchestrator/shared/database"
	"github.com/fin-orchestrator/fin-orchestrator/shared/pgtest"
)

// The handler path of the two operations scripts/bench.d/api.sh loads, as `fin api` serves them
// (the same New, a 16-connection pool, 16 clients at once), over an in-memory listener so that
// loopback TCP, which the server cannot cut, does not drown what it can. Besides ns/op (wall
// time, which follows the database's latency) each reports cpu-us/op: this process's user and
// system CPU per request, server and the small fasthttp client together, the figure a change of
// the handler path moves. Run with -cpu 1, as `fin api` runs beside a local Postgres:
//
//	go test ./shared/api/ -run '^$' -bench 'GetAccount|Transfer' -cpu 1 -benchtime 20000x

// benchAPI is an API on its own database, reachable in memory, with accounts to read and move
// money between.
type benchAPI struct {
	client   *fasthttp.Client
	token    string
	accounts []string
}

func newBenchAPI(b *testing.B, accounts int) *benchAPI {
	b.Helper()
	// Per-request log lines off, as api.sh runs fin api (LOG_LEVEL=warn).
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	b.Cleanup(func() { slog.SetDefault(prev) })
	db := pgtest.New(b)
	pool, err := database.Open(context.Background(), db.URL, 16) // as api.sh runs fin api (-conns 16)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	secret := make([]byte, 32)
	rand.Read(secret)
	ctx, cancel := context.WithCancel(context.Background())
	app, err := New(ctx, Config{Pool: pool, Auth: AuthConfig{Secret: secret}})
	if err != nil {
		b.Fatal(err)
	}
	ln := fasthttputil.NewInmemoryListener()
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, app, ln) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("server: %v", err)
		}
	})
	tok, err := IssueToken(secret, "bench", []string{ScopeRead, ScopeWrite, ScopeService}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	a := &benchAPI{token: tok, client: &fasthttp.Client{
		Dial:            func(string) (net.Conn, error) { return ln.Dial() },
		MaxConnsPerHost: 64,
	}}
	var c struct {
		ID string `json:"customer_id"`
	}
	a.must(b, "POST", "/customers", `{"first_name":"Bench","last_name":"Mark","email":"bench@example.com"}`, 201, &c)
	for range accounts {
		var acct struct {
			ID string `json:"account_id"`
		}
		a.must(b, "POST", "/accounts", `{"customer_id":"`+c.ID+`","account_type":"CHECKING","currency":"USD","opening_deposit":"1000000.00"}`, 201, &acct)
		a.accounts = append(a.accounts, acct.ID)
	}
	return a
}

// do sends one request and returns its status and body.
func (a *benchAPI) do(req *fasthttp.Request, resp *fasthttp.Response, method, path, body string) (int, error) {
	req.Reset()
	req.SetRequestURI("http://api" + path)
	req.Header.SetMethod(method)
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != "" {
		req.Header.SetContentType("application/json")
		req.SetBodyString(body)
	}
	if err := a.client.Do(req, resp); err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return resp.StatusCode(), nil
}

func (a *benchAPI) must(b *testing.B, method, path, body string, want int, out any) {
	b.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	status, err := a.do(req, resp, method, path, body)
	if err != nil || status != want {
		b.Fatalf("%s %s: %d %s (want %d), %v", method, path, status, resp.Body(), want, err)
	}
	if err := json.Unmarshal(resp.Body(), out); err != nil {
		b.Fatalf("%s %s: %v", method, path, err)
	}
}

// load runs b.N requests from 16 clients at once, the i-th made by next(i), each answered
// with want, and reports the process's CPU per request.
func (a *benchAPI) load(b *testing.B, want int, next func(i int64) (method, path, body string)) {
	var n, bad atomic.Int64
	b.SetParallelism(16) // 16 clients per GOMAXPROCS: with -cpu 1, as api.sh's 16 connections
	b.ReportAllocs()
	before := cpuTime(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		for pb.Next() {
			method, path, body := next(n.Add(1))
			if status, err := a.do(req, resp, method, path, body); err != nil || status != want {
				if bad.Add(1) == 1 {
					b.Errorf("%s %s: %d %s (want %d), %v", method, path, status, resp.Body(), want, err)
				}
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-before)/float64(time.Microsecond)/float64(b.N), "cpu-us/op")
}

// cpuTime is the user and system CPU this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkGetAccount(b *testing.B) {
	a := newBenchAPI(b, 100)
	a.load(b, 200, func(i int64) (string, string, string) {
		return "GET", "/accounts/" + a.accounts[i%int64(len(a.accounts))], ""
	})
}

// BenchmarkTransfer moves 0.01 between two different accounts per request, as api.sh does.
func BenchmarkTransfer(b *testing.B) {
	a := newBenchAPI(b, 100)
	n := int64(len(a.accounts))
	a.load(b, 201, func(i int64) (string, string, string) {
		from, to := a.accounts[i%n], a.accounts[(i*7+1)%n]
		if from == to {
			to = a.accounts[(i+1)%n]
		}
		return "POST", "/transactions", `{"account_id":"` + from + `","related_account_id":"` + to +
			`","transaction_type":"TRANSFER","amount":"0.01"}`
	})
}
