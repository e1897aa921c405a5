package api

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fin-orchestrator/fin-orchestrator/shared/emf"
)

// requestLog is what one request's log line gathers while the request runs.
type requestLog struct {
	id      string
	subject string
}

type requestLogKey struct{}

// loggedContext is a request's context with its log record in one allocation, where
// context.WithValue and the record were two (on every request).
type loggedContext struct {
	context.Context
	log requestLog
}

func (c *loggedContext) Value(key any) any {
	if _, ok := key.(requestLogKey); ok {
		return &c.log
	}
	return c.Context.Value(key)
}

func requestID(ctx context.Context) string {
	if r, ok := ctx.Value(requestLogKey{}).(*requestLog); ok {
		return r.id
	}
	return ""
}

func setLogSubject(ctx context.Context, subject string) {
	if r, ok := ctx.Value(requestLogKey{}).(*requestLog); ok {
		r.subject = subject
	}
}

// observe gives each request an id (the caller's X-Request-Id when it is a sane token, which the
// Lambda entry sets to API Gateway's request id), writes one JSON log line per request and, when
// metrics is set, its EMF metrics (requestMetrics). The line names the route template, never the
// URL: query strings may carry an email address.
func observe(metrics io.Writer) fiber.Handler {
	out := emf.New(metrics)
	if metrics == nil {
		out = nil
	}
	return func(c *fiber.Ctx) error {
		start := time.Now()
		err := observed(c)
		if out != nil {
			requestMetrics(out, c.Route().Path, c.Response().StatusCode(), time.Since(start))
		}
		return err
	}
}

// requestMetrics writes one request's metrics by route (template.yaml's dashboard reads them):
// Requests, Latency, and Errors4xx / Errors5xx (0 or 1, so their Sum counts and Average is a rate).
func requestMetrics(out *emf.Writer, route string, status int, took time.Duration) {
	bad := func(lo int) float64 {
		if status >= lo && status < lo+100 {
			return 1
		}
		return 0
	}
	out.Emit(map[string]string{"Function": "api", "Route": route},
		emf.Metric{Name: "Requests", Value: 1, Unit: emf.Count},
		emf.Metric{Name: "Latency", Value: float64(took.Microseconds()) / 1000, Unit: emf.Milliseconds},
		emf.Metric{Name: "Errors4xx", Value: bad(400), Unit: emf.Count},
		emf.Metric{Name: "Errors5xx", Value: bad(500), Unit: emf.Count})
}

func observed(c *fiber.Ctx) error {
	// The server reads the clock as the handler starts; the Lambda adapter's context has no time.
	start := c.Context().Time()
	if start.IsZero() {
		start = time.Now()
	}
	id := c.Get("X-Request-Id")
	if !saneID(id) {
		id = newRequestID()
	}
	c.Set("X-Request-Id", id)
	ctx := &loggedContext{Context: c.UserContext(), log: requestLog{id: id}}
	rec := &ctx.log
	c.SetUserContext(ctx)
	if err := c.Next(); err != nil {
		if herr := c.App().Config().ErrorHandler(c, err); herr != nil {
			return herr
		}
	}
	status := c.Response().StatusCode()
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	// Checked first: building the attributes costs allocations even when the level drops them.
	if !slog.Default().Enabled(c.UserContext(), level) {
		return nil
	}
	slog.Log(c.UserContext(), level, "request", "request_id", id, "method", c.Method(), "route", c.Route().Path,
		"status", status, "duration_ms", float64(time.Since(start).Microseconds())/1000, "subject", rec.subject)
	return nil
}

func saneID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// newRequestID is 96 random bits in hex. An id names a request in the logs and need not be
// secret, so it comes from the runtime's generator (ChaCha8, seeded from the system's
// randomness) rather than a call into crypto/rand per request.
func newRequestID() string {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint32(b[8:], rand.Uint32())
	var out [24]byte
	hex.Encode(out[:], b[:])
	return string(out[:])
}
