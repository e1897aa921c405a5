package api

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// docsFiles are the /docs page and its Swagger UI assets (see docsui/README.md). Serving them
// from the binary keeps the page working with no internet, as air-gapped banks run. The large
// assets are stored gzip-compressed and sent as such to every browser (all accept gzip).
//
//go:embed docsui/index.html docsui/init.js docsui/swagger-ui-bundle.js.gz docsui/swagger-ui.css.gz
var docsFiles embed.FS

// docsPolicy lets the page load only what this server serves (Swagger UI styles inline).
const docsPolicy = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; " +
	"script-src 'self'; connect-src 'self'; frame-ancestors 'none'"

var docsTypes = map[string]string{
	"index.html":           "text/html; charset=utf-8",
	"init.js":              "text/javascript; charset=utf-8",
	"swagger-ui-bundle.js": "text/javascript; charset=utf-8",
	"swagger-ui.css":       "text/css; charset=utf-8",
}

func registerDocs(app *fiber.App) {
	for name, ctype := range docsTypes {
		route := "/docs/" + name
		if name == "index.html" {
			route = "/docs"
		}
		app.Get(route, docsAsset(name, ctype))
	}
}

func docsAsset(name, ctype string) fiber.Handler {
	body, err := docsFiles.ReadFile("docsui/" + name)
	gzipped := false
	if err != nil {
		body, err = docsFiles.ReadFile("docsui/" + name + ".gz")
		gzipped = true
	}
	if err != nil {
		panic("api: docs asset missing from the build: " + name) // a build defect, caught by every test
	}
	return func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, ctype)
		c.Set(fiber.HeaderContentSecurityPolicy, docsPolicy)
		c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
		if name != "index.html" {
			c.Set(fiber.HeaderCacheControl, "public, max-age=86400")
		}
		if !gzipped {
			return c.Send(body)
		}
		c.Vary(fiber.HeaderAcceptEncoding)
		if strings.Contains(c.Get(fiber.HeaderAcceptEncoding), "gzip") {
			c.Set(fiber.HeaderContentEncoding, "gzip")
			return c.Send(body)
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return err
		}
		plain, err := io.ReadAll(zr)
		if err != nil {
			return err
		}
		return c.Send(plain)
	}
}
