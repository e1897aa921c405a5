package stack

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// parts runs the stack's long-running parts: the first that stops with an error stops them all.
type parts struct {
	ctx    context.Context
	cancel context.CancelFunc
	log    *slog.Logger
	failed func(name string, err error) // a supervised part failed and is restarting
	wg     sync.WaitGroup
	errc   chan error
}

// startParts returns the context the parts run in, which ends with ctx or the first failure.
func startParts(ctx context.Context, log *slog.Logger, failed func(string, error)) (context.Context, *parts) {
	ctx, cancel := context.WithCancel(ctx)
	return ctx, &parts{ctx: ctx, cancel: cancel, log: log, failed: failed, errc: make(chan error, 16)}
}

// run starts a part; its error, unless the stack is stopping, stops the stack.
func (p *parts) run(name string, fn func() error) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if err := fn(); err != nil && p.ctx.Err() == nil {
			p.log.Error("part stopped", "part", name, "err", err)
			p.errc <- fmt.Errorf("%s: %w", name, err)
			p.cancel()
		}
	}()
}

// supervise keeps a long-running part going: when it fails it is logged, shown on the console,
// and restarted with backoff (a capture whose slot is still held by a dying connection, a broker
// restarting), as a managed service would be. It is not retry.Do: a part is restarted without a
// limit, each failure is shown, and the backoff starts again after a part ran a minute.
func (p *parts) supervise(name string, fn func() error) {
	p.run(name, func() error {
		backoff := time.Second
		for {
			start := time.Now()
			err := fn()
			if p.ctx.Err() != nil {
				return nil
			}
			if time.Since(start) > time.Minute {
				backoff = time.Second
			}
			p.log.Error("part failed; restarting", "part", name, "in", backoff, "err", err)
			p.failed(name, err)
			select {
			case <-p.ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
		}
	})
}

// stop ends every part and waits for them.
func (p *parts) stop() {
	p.cancel()
	p.wg.Wait()
}

// wait returns once the parts' context has ended and every part has returned, with the first
// error that stopped one.
func (p *parts) wait() error {
	<-p.ctx.Done()
	p.wg.Wait()
	select {
	case err := <-p.errc:
		return err
	default:
		return nil
	}
}
