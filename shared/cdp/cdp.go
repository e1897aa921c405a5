// Package cdp drives a headless Chromium through the DevTools protocol over a pipe
// (--remote-debugging-pipe): no port, no websocket, nothing but Debian's chromium. It does what a
// page test needs: open a page, wait for what it draws, click and type as a user would (real
// input events, not script calls), and take screenshots.
package cdp

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"
)

// Browser is a running headless Chromium.
type Browser struct {
	cmd  *exec.Cmd
	in   *os.File // what Chromium reads (its fd 3)
	out  *os.File // what it writes (its fd 4)
	mu   sync.Mutex
	next int64
	wait map[int64]chan reply
	dead chan struct{}
	err  error // why the pipe closed
}

type reply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Launch starts chromium headless with its profile in dir (a fresh folder) and extra flags.
func Launch(chromium, dir string, flags ...string) (*Browser, error) {
	toChrome, ourEnd, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	fromChrome, theirEnd, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--remote-debugging-pipe",
		"--user-data-dir=" + dir}, flags...)
	cmd := exec.Command(chromium, append(args, "about:blank")...)
	cmd.ExtraFiles = []*os.File{toChrome, theirEnd}
	cmd.Stderr, err = os.Create(dir + ".log")
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", chromium, err)
	}
	toChrome.Close()
	theirEnd.Close()
	b := &Browser{cmd: cmd, in: ourEnd, out: fromChrome, wait: map[int64]chan reply{}, dead: make(chan struct{})}
	go b.read()
	return b, nil
}

// read hands each reply to its caller; events are not needed (pages are polled).
func (b *Browser) read() {
	r := bufio.NewReaderSize(b.out, 1<<20)
	for {
		msg, err := r.ReadBytes(0)
		if err != nil {
			b.mu.Lock()
			b.err = fmt.Errorf("chromium's pipe: %w", err)
			b.mu.Unlock()
			close(b.dead)
			return
		}
		var m struct {
			ID int64 `json:"id"`
			reply
		}
		if json.Unmarshal(msg[:len(msg)-1], &m) != nil || m.ID == 0 {
			continue
		}
		b.mu.Lock()
		ch := b.wait[m.ID]
		delete(b.wait, m.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- m.reply
		}
	}
}

// call sends method with params (in session, when not empty) and decodes its result into out.
func (b *Browser) call(ctx context.Context, session, method string, params, out any) error {
	b.mu.Lock()
	b.next++
	id, ch := b.next, make(chan reply, 1)
	b.wait[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	raw, _ := json.Marshal(msg)
	if _, err := b.in.Write(append(raw, 0)); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case r := <-ch:
		if r.Error != nil {
			return fmt.Errorf("%s: %s (%d)", method, r.Error.Message, r.Error.Code)
		}
		if out != nil {
			return json.Unmarshal(r.Result, out)
		}
		return nil
	case <-b.dead:
		return fmt.Errorf("%s: %w", method, b.err)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// Close stops the browser.
func (b *Browser) Close() error {
	b.call(context.Background(), "", "Browser.close", struct{}{}, nil)
	done := make(chan error, 1)
	go func() { done <- b.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		b.cmd.Process.Kill()
		<-done
	}
	b.in.Close()
	return b.out.Close()
}

// Page is one tab.
type Page struct {
	b             *Browser
	session       string
	width, height int
}

// NewPage opens a tab of width x height CSS pixels.
func (b *Browser) NewPage(ctx context.Context, width, height int) (*Page, error) {
	var t struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &t); err != nil {
		return nil, err
	}
	var s struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": t.TargetID, "flatten": true}, &s); err != nil {
		return nil, err
	}
	p := &Page{b: b, session: s.SessionID, width: width, height: height}
	return p, p.resize(ctx, height)
}

func (p *Page) resize(ctx context.Context, height int) error {
	return p.call(ctx, "Emulation.setDeviceMetricsOverride",
		map[string]any{"width": p.width, "height": height, "deviceScaleFactor": 1, "mobile": false}, nil)
}

func (p *Page) call(ctx context.Context, method string, params, out any) error {
	return p.b.call(ctx, p.session, method, params, out)
}

// Navigate opens url and waits until the document has loaded.
func (p *Page) Navigate(ctx context.Context, url string) error {
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	if err := p.call(ctx, "Page.navigate", map[string]any{"url": url}, &nav); err != nil {
		return err
	}
	if nav.ErrorText != "" {
		return fmt.Errorf("open %s: %s", url, nav.ErrorText)
	}
	return p.WaitFor(ctx, `document.readyState === "complete" && location.href !== "about:blank"`)
}

// Eval evaluates a JavaScript expression in the page (awaiting a promise) into out.
func (p *Page) Eval(ctx context.Context, expr string, out any) error {
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := p.call(ctx, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &r); err != nil {
		return err
	}
	if r.Exception != nil {
		return fmt.Errorf("evaluate %.120s: %s %s", expr, r.Exception.Text, r.Exception.Exception.Description)
	}
	if out == nil || len(r.Result.Value) == 0 {
		return nil
	}
	return json.Unmarshal(r.Result.Value, out)
}

// WaitFor polls expr until it is true, or ctx ends (the error then says which expression).
func (p *Page) WaitFor(ctx context.Context, expr string) error {
	var last error
	for {
		var ok bool
		if last = p.Eval(ctx, "!!("+expr+")", &ok); last == nil && ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waited for %s: %w (last: %v)", expr, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Click clicks the middle of the element selector names with the mouse, as a user would. The
// point is checked to hit the element first (a page that re-renders above it moves it), and
// measured again if not.
func (p *Page) Click(ctx context.Context, selector string) error {
	sel, _ := json.Marshal(selector)
	for try := 0; ; try++ {
		var at struct {
			X, Y float64
			Hit  bool
		}
		if err := p.Eval(ctx, `new Promise((done) => { const e = document.querySelector(`+string(sel)+`); if (!e) return done(null);
			e.scrollIntoView({block: "center"}); requestAnimationFrame(() => { const r = e.getBoundingClientRect();
			const x = r.x + r.width / 2, y = r.y + r.height / 2, h = document.elementFromPoint(x, y);
			done({X: x, Y: y, Hit: !!h && (h === e || e.contains(h))}); }); })`, &at); err != nil {
			return err
		}
		if at.X == 0 && at.Y == 0 {
			return fmt.Errorf("click %s: no such element", selector)
		}
		if !at.Hit && try < 5 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if !at.Hit {
			return fmt.Errorf("click %s: something else covers it", selector)
		}
		for _, typ := range []string{"mouseMoved", "mousePressed", "mouseReleased"} {
			if err := p.call(ctx, "Input.dispatchMouseEvent", map[string]any{"type": typ, "x": at.X, "y": at.Y,
				"button": "left", "clickCount": 1}, nil); err != nil {
				return fmt.Errorf("click %s: %w", selector, err)
			}
		}
		return nil
	}
}

// Type clicks into the field selector names and types text into it.
func (p *Page) Type(ctx context.Context, selector, text string) error {
	if err := p.Click(ctx, selector); err != nil {
		return err
	}
	return p.call(ctx, "Input.insertText", map[string]any{"text": text}, nil)
}

// Screenshot writes the whole page, beyond the viewport, as a PNG to path.
func (p *Page) Screenshot(ctx context.Context, path string) error {
	return p.shoot(ctx, path, map[string]any{"format": "png", "captureBeyondViewport": true})
}

// ScreenshotOf writes the element selector names as a PNG to path. The viewport grows to the
// whole page meanwhile, as Puppeteer's full-page shots do, so the clip is where the element is.
func (p *Page) ScreenshotOf(ctx context.Context, selector, path string) error {
	var full int
	if err := p.Eval(ctx, `(scrollTo(0, 0), Math.ceil(document.documentElement.scrollHeight))`, &full); err != nil {
		return err
	}
	if err := p.resize(ctx, max(full, p.height)); err != nil {
		return err
	}
	defer p.resize(context.WithoutCancel(ctx), p.height)
	var clip struct {
		X, Y, Width, Height float64
	}
	sel, _ := json.Marshal(selector)
	if err := p.Eval(ctx, `new Promise((done) => requestAnimationFrame(() => { scrollTo(0, 0);
		const e = document.querySelector(`+string(sel)+`); if (!e) return done(null);
		const r = e.getBoundingClientRect(); done({X: r.x, Y: r.y, Width: Math.max(1, r.width), Height: Math.max(1, r.height)}); }))`, &clip); err != nil {
		return err
	}
	if clip.Width == 0 {
		return fmt.Errorf("screenshot of %s: no such element", selector)
	}
	return p.shoot(ctx, path, map[string]any{"format": "png",
		"clip": map[string]any{"x": clip.X, "y": clip.Y, "width": clip.Width, "height": clip.Height, "scale": 1}})
}

func (p *Page) shoot(ctx context.Context, path string, params map[string]any) error {
	var shot struct {
		Data string `json:"data"`
	}
	if err := p.call(ctx, "Page.captureScreenshot", params, &shot); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	if len(png) == 0 {
		return errors.New("screenshot: empty")
	}
	return os.WriteFile(path, png, 0o644)
}
