package cdp

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// A real Chromium opens a page, a mouse click runs the button's handler (a script call would not
// count as a click: the handler checks isTrusted), typed text reaches the field, and the
// screenshot is a PNG.
func TestDrivesChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("no chromium on PATH (scripts/chromium.sh installs Debian's; scripts/test.d/70-console-browser.sh runs this)")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `<!doctype html><input id="f"><button id="b" style="margin-top:1500px">go</button><p id="out"></p>
<script>document.getElementById("b").addEventListener("click", (e) => {
  document.getElementById("out").textContent = (e.isTrusted ? "clicked " : "scripted ") + document.getElementById("f").value; });</script>`)
	}))
	defer srv.Close()
	dir := t.TempDir()
	b, err := Launch(chromium, filepath.Join(dir, "profile"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := b.NewPage(ctx, 800, 600)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Navigate(ctx, srv.URL); err != nil {
		t.Fatal(err)
	}
	if err := p.Type(ctx, "#f", "hello"); err != nil {
		t.Fatal(err)
	}
	if err := p.Click(ctx, "#b"); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitFor(ctx, `document.getElementById("out").textContent === "clicked hello"`); err != nil {
		var got string
		p.Eval(ctx, `document.getElementById("out").textContent`, &got)
		t.Fatalf("%v: the page says %q", err, got)
	}
	if err := p.Click(ctx, "#nothing"); err == nil {
		t.Error("a click on a missing element succeeded")
	}
	shot := filepath.Join(dir, "page.png")
	if err := p.Screenshot(ctx, shot); err != nil {
		t.Fatal(err)
	}
	if png, _ := os.ReadFile(shot); len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Errorf("the screenshot is not a PNG (%d bytes)", len(png))
	}
	if err := p.ScreenshotOf(ctx, "#b", shot); err != nil {
		t.Fatal(err)
	}
	if err := p.ScreenshotOf(ctx, "#nothing", shot); err == nil {
		t.Error("a screenshot of a missing element succeeded")
	}
}
