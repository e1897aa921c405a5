package lambdalocal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/google/uuid"
)

// Function is one deployed function as the local runtime invokes it: its handler goes through the
// same JSON round trip and context (request id, deadline) as in Lambda.
type Function struct {
	Name    string
	Handler lambda.Handler
	Timeout time.Duration
	// Reserved is the function's reserved concurrency (ReservedConcurrentExecutions): an
	// invocation beyond it is throttled (ErrThrottled), as in Lambda; -1 for no limit of its own.
	Reserved int
	running  atomic.Int64
}

// ErrThrottled is Lambda's TooManyRequestsException: the function already runs as many
// invocations as its reserved concurrency allows. Whoever invoked it decides what happens next:
// an event source mapping retries the batch, the asynchronous queue retries the event.
var ErrThrottled = errors.New("TooManyRequestsException: Rate Exceeded (reserved concurrency reached)")

// NewFunction wraps a handler of any signature lambda.Start accepts.
func NewFunction(name string, handler any, timeout time.Duration) *Function {
	return &Function{Name: name, Handler: lambda.NewHandler(handler), Timeout: timeout, Reserved: -1}
}

// Call marshals event as the Lambda service would and invokes the function with it.
func (f *Function) Call(ctx context.Context, event any) ([]byte, error) {
	payload, err := json.Marshal(event)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: marshal event: %w", f.Name, err)
	}
	return f.Invoke(ctx, payload)
}

// Invoke runs the handler on one JSON payload with the function's deadline and a Lambda
// context, and returns its JSON response. A handler error is the invocation's error.
func (f *Function) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	if n := f.running.Add(1); f.Reserved >= 0 && n > int64(f.Reserved) {
		f.running.Add(-1)
		return nil, fmt.Errorf("invoke %s: %w", f.Name, ErrThrottled)
	}
	defer f.running.Add(-1)
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	lc := &lambdacontext.LambdaContext{AwsRequestID: uuid.NewString(),
		InvokedFunctionArn: "arn:aws:lambda:us-east-1:000000000000:function:" + f.Name}
	ctx = lambdacontext.NewContext(ctx, lc)
	start := time.Now()
	out, err := f.Handler.Invoke(ctx, payload)
	slog.Debug("invoked", "function", f.Name, "request_id", lc.AwsRequestID, "duration_ms", time.Since(start).Milliseconds(), "err", err)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", f.Name, err)
	}
	return out, nil
}

// HTTP calls the function with an HTTP API event and reads its response, for HTTPGateway.
func (f *Function) HTTP() HTTPFunc {
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		out, err := f.Call(ctx, ev)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			return resp, fmt.Errorf("%s returned no HTTP API response: %w", f.Name, err)
		}
		return resp, nil
	}
}
