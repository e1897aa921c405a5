package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humafiber"
)

// refuseBadText answers 422 for a NUL byte or invalid UTF-8 in any parameter of the operation
// (path, query, header) or any string of the JSON body, before a handler runs. Postgres stores
// neither in text (it would fail the query with a 500), and JSON decoding would silently turn
// invalid UTF-8 into U+FFFD, storing something the client never sent.
func refuseBadText(api huma.API) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		if loc, what := badText(ctx); loc != "" {
			writeProblem(api, ctx, newProblem(http.StatusUnprocessableEntity, "invalid_text",
				loc+" "+what+"; text must be valid UTF-8 without NUL bytes", loc))
			return
		}
		if loc := emptyParam(ctx); loc != "" {
			writeProblem(api, ctx, newProblem(http.StatusUnprocessableEntity, "validation_failed",
				loc+" is empty, which its schema does not allow; leave the parameter out instead", loc))
			return
		}
		next(ctx)
	}
}

// emptyParam finds a query or header parameter sent with an empty value that its schema refuses
// (a uuid, a date-time, an enum, a number, a minimum length). Huma takes an empty value for an
// absent one, so `?starting_after=` would otherwise read the first page instead of being refused.
func emptyParam(ctx huma.Context) string {
	var q url.Values
	var empty map[string]bool
	for _, p := range ctx.Operation().Parameters {
		if p.Schema == nil || !refusesEmpty(p.Schema) {
			continue
		}
		switch p.In {
		case "query":
			if q == nil {
				u := ctx.URL()
				q = url.Values{} // no query string, no parameter sent empty: nothing to parse
				if u.RawQuery != "" {
					q = u.Query()
				}
			}
			if vs, ok := q[p.Name]; ok && len(vs) > 0 && vs[0] == "" {
				return "query." + p.Name
			}
		case "header":
			if empty == nil {
				empty = map[string]bool{}
				ctx.EachHeader(func(name, value string) {
					if value == "" {
						empty[strings.ToLower(name)] = true
					}
				})
			}
			if empty[strings.ToLower(p.Name)] {
				return "header." + p.Name
			}
		}
	}
	return ""
}

func refusesEmpty(s *huma.Schema) bool {
	return s.Type != "string" || s.Format != "" || len(s.Enum) > 0 || s.Pattern != "" ||
		s.MinLength != nil && *s.MinLength > 0
}

// badText returns the location of the first bad text in the request and what is wrong with it.
func badText(ctx huma.Context) (string, string) {
	for _, p := range ctx.Operation().Parameters {
		var v string
		switch p.In {
		case "path":
			v = ctx.Param(p.Name)
			if d, err := url.PathUnescape(v); err == nil {
				v = d // Fiber leaves path parameters escaped: %00 is a NUL too
			}
		case "header":
			v = ctx.Header(p.Name)
		default:
			continue // query values are checked below, every one of them
		}
		if what := textFault(v); what != "" {
			return p.In + "." + p.Name, what
		}
	}
	u := ctx.URL()
	if u.RawQuery != "" {
		q := u.Query()
		names := make([]string, 0, len(q))
		for name := range q {
			names = append(names, name)
		}
		sort.Strings(names) // the first bad one, the same on every try
		for _, name := range names {
			if what := textFault(name); what != "" {
				return "query", "has a parameter name that " + what
			}
			for _, v := range q[name] {
				if what := textFault(v); what != "" {
					return "query." + name, what
				}
			}
		}
	}
	if ctx.Operation().RequestBody == nil {
		return "", ""
	}
	return bodyFault(requestBody(ctx))
}

// requestBody is the body Fiber has already read in full (nil when there is none).
func requestBody(ctx huma.Context) []byte {
	return humafiber.UnwrapV2(ctx).Body()
}

// textFault says what is wrong with s, or "" when it is fine.
func textFault(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "contains a NUL byte"
	}
	return ""
}

// bodyFault finds invalid UTF-8 in a JSON body (RFC 8259 requires UTF-8) or a NUL character in
// one of its strings. A body without the six bytes \u0000 cannot hold a NUL, so most bodies are
// only scanned, never decoded twice.
func bodyFault(body []byte) (string, string) {
	if !utf8.Valid(body) {
		return "body", "is not valid UTF-8"
	}
	if !bytes.Contains(body, []byte(`\u0000`)) {
		return "", ""
	}
	var v any
	if json.Unmarshal(body, &v) != nil {
		return "", "" // not JSON: Huma answers that
	}
	return nulIn("body", v)
}

// nulIn walks a decoded JSON value for a string (or object key) holding a NUL.
func nulIn(loc string, v any) (string, string) {
	switch x := v.(type) {
	case string:
		if strings.IndexByte(x, 0) >= 0 {
			return loc, "contains a NUL character"
		}
	case []any:
		for i, e := range x {
			if l, what := nulIn(loc+"["+strconv.Itoa(i)+"]", e); l != "" {
				return l, what
			}
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if strings.IndexByte(k, 0) >= 0 {
				return loc, fmt.Sprintf("has a property name with a NUL character (%q)", k)
			}
			if l, what := nulIn(loc+"."+k, x[k]); l != "" {
				return l, what
			}
		}
	}
	return "", ""
}
