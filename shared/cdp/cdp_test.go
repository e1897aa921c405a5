package cdp

import (
	"context"
	"image/png"
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
		io.WriteString(w, `<!doctype html><input id="f"><button id="b" style="margin-top:1500px">go</button><div id="red" style="margin-top:900px;width:120px;height:80px;background:#ff0000"></div><p id="out"></p>
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
	if err := p.ScreenshotOf(ctx, "#red", shot); err != nil {
		t.Fatal(err)
	}
	wantRed(t, shot, 120, 80)
	if err := p.ScreenshotOf(ctx, "#nothing", shot); err == nil {
		t.Error("a screenshot of a missing element succeeded")
	}
}

// wantRed: the PNG at path is w x h pixels, all red (the element, not what is beside it).
func wantRed(t *testing.T, path string, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("the element's screenshot is %dx%d, want %dx%d", b.Dx(), b.Dy(), w, h)
	}
	for _, pt := range [][2]int{{0, 0}, {w - 1, h - 1}, {w / 2, h / 2}} {
		r, g, b, _ := img.At(pt[0], pt[1]).RGBA()
		if r>>8 < 240 || g>>8 > 15 || b>>8 > 15 {
			t.Errorf("pixel %v of the element's screenshot is %d,%d,%d, want red", pt, r>>8, g>>8, b>>8)
		}
	}
}
