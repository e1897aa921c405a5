package api

import (
	"bytes"
	"strconv"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
)

// fastGetAccount answers the common GET /accounts/{account_id} (no query string, a canonical
// UUID, a token that may read, an account the token sees) without Huma's per-request work
// (parameter binding, validation, the middleware chain, the response's reflection). Huma still
// declares and documents the operation, and every other request, refusals and errors included,
// falls through to it (c.Next), so every answer but the plain 200 is Huma's own; the 200 is
// written byte for byte as Huma writes it (TestFastGetAccountSameAnswers).
type fastGetAccount struct {
	s        *server
	v        *verifier
	security []map[string][]string // the operation's, as requireScopes checks it
}

func (f *fastGetAccount) handle(c *fiber.Ctx) error {
	req := c.Request()
	// Anything with a query (as_of, an unknown parameter, a bare "?") is Huma's.
	if bytes.IndexByte(req.Header.RequestURI(), '?') >= 0 {
		return c.Next()
	}
	raw := c.Params("account_id")
	if !canonicalUUID(raw) {
		return c.Next()
	}
	p, err := f.v.verifyHeader(req.Header.Peek(fiber.HeaderAuthorization))
	if err != nil || p.refusal(f.security, f.v.claim) != nil {
		return c.Next()
	}
	id, err := uuid.Parse(raw)
	if err != nil {
		return c.Next()
	}
	ctx := c.UserContext()
	a, err := f.s.accounts.get(ctx, id)
	if err != nil || !p.seesAccount(a) {
		return c.Next() // Huma reads again and answers the error (or the 404) as it always does
	}
	setLogSubject(ctx, p.Subject)
	resp := c.Response()
	resp.Header.SetContentType(fiber.MIMEApplicationJSON)
	var tag [24]byte
	resp.Header.SetBytesV(fiber.HeaderETag, appendETag(tag[:0], a.Version))
	resp.SetStatusCode(fiber.StatusOK)
	// The body is built on the stack (an account is ~300 bytes) and copied into the response's
	// own buffer: a buffer handed to the response's io.Writer would escape to the heap.
	var stack [512]byte
	out := accountOut(a)
	resp.AppendBody(append(out.appendJSON(stack[:0]), '\n'))
	return nil
}

// appendETag appends etag(version) without building a string.
func appendETag(b []byte, version int64) []byte {
	b = append(b, '"', 'v')
	b = strconv.AppendInt(b, version, 10)
	return append(b, '"')
}

// canonicalUUID reports whether s is a UUID in the 8-4-4-4-12 form in lower-case hex, the form
// the API writes, which every parser (Huma's format check, uuid.Parse) reads alike; other
// spellings are left to Huma.
func canonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}
