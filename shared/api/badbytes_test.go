package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
)

// openAPIOp is what TestBadBytes reads of one operation of /openapi.json.
type openAPIOp struct {
	method, path string
	params       []struct{ name, in string }
	bodyStrings  []string // the string properties of the JSON body, when there is one
}

// operationsOf reads every operation of the API's own OpenAPI description.
func operationsOf(t *testing.T, e *env) []openAPIOp {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name string `json:"name"`
				In   string `json:"in"`
			} `json:"parameters"`
			RequestBody *struct {
				Content map[string]struct {
					Schema struct {
						Ref string `json:"$ref"`
					} `json:"schema"`
				} `json:"content"`
			} `json:"requestBody"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Type any `json:"type"` // "string" or ["string", "null"]
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	doHTTP(t, e.client, e.base, request{method: "GET", path: "/openapi.json"}).json(t, &doc)
	var ops []openAPIOp
	for path, methods := range doc.Paths {
		for method, o := range methods {
			op := openAPIOp{method: strings.ToUpper(method), path: path}
			for _, p := range o.Parameters {
				op.params = append(op.params, struct{ name, in string }{p.Name, p.In})
			}
			if o.RequestBody != nil {
				ref := o.RequestBody.Content["application/json"].Schema.Ref
				schema, ok := doc.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")]
				if !ok {
					t.Fatalf("%s %s: body schema %q not in the description", method, path, ref)
				}
				for name, prop := range schema.Properties {
					if b, _ := json.Marshal(prop.Type); strings.Contains(string(b), `"string"`) {
						op.bodyStrings = append(op.bodyStrings, name)
					}
				}
				sort.Strings(op.bodyStrings)
				if len(op.bodyStrings) == 0 {
					t.Fatalf("%s %s: a body without string properties: extend the test", method, path)
				}
			}
			ops = append(ops, op)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].path+ops[i].method < ops[j].path+ops[j].method })
	if len(ops) < 15 {
		t.Fatalf("only %d operations in /openapi.json", len(ops))
	}
	return ops
}

// TestBadBytes sends a NUL byte and invalid UTF-8 in every parameter and every string of the body
// of every operation in /openapi.json: each is a 4xx problem naming where the bad text is, never
// a 5xx (Postgres refuses both in text; JSON decoding would mangle the second).
func TestBadBytes(t *testing.T) {
	e := newEnv(t)
	const someID = "00000000-0000-4000-8000-000000000000"
	bad := map[string]string{"NUL": "a\x00b", "invalid UTF-8": "a\xff\xfeb"}
	type bcase struct {
		name, location string
		r              request
		httpOnly       bool // a NUL cannot cross a real HTTP header; the Lambda events carry it
		lambdaOnly     bool
	}
	var cases []bcase
	for _, op := range operationsOf(t, e) {
		if op.path == "/healthz" || strings.HasPrefix(op.path, "/openapi") || strings.HasPrefix(op.path, "/docs") {
			continue // no parameters, no database
		}
		base := func() (string, url.Values, map[string]string) {
			p := op.path
			for _, prm := range op.params {
				if prm.in == "path" {
					p = strings.ReplaceAll(p, "{"+prm.name+"}", someID)
				}
			}
			return p, url.Values{}, map[string]string{}
		}
		body := func(field, v string) any {
			if len(op.bodyStrings) == 0 {
				return nil
			}
			return map[string]any{field: v}
		}
		for kind, v := range bad {
			for _, prm := range op.params {
				p, q, h := base()
				switch prm.in {
				case "path":
					p = strings.ReplaceAll(op.path, "{"+prm.name+"}", url.PathEscape(v))
					for _, other := range op.params {
						if other.in == "path" && other.name != prm.name {
							p = strings.ReplaceAll(p, "{"+other.name+"}", someID)
						}
					}
				case "query":
					q.Set(prm.name, v)
				case "header":
					h[prm.name] = v
				}
				if len(q) > 0 {
					p += "?" + q.Encode()
				}
				r := request{method: op.method, path: p, token: e.rw, header: h, body: body(firstOr(op.bodyStrings), "ok")}
				cases = append(cases, bcase{name: op.method + " " + op.path + " " + prm.in + "." + prm.name + " " + kind,
					location: prm.in + "." + prm.name, r: r, lambdaOnly: prm.in == "header" && kind == "NUL",
					httpOnly: kind == "invalid UTF-8"})
			}
			for _, field := range op.bodyStrings {
				p, _, _ := base()
				if kind == "NUL" {
					cases = append(cases, bcase{name: op.method + " " + op.path + " body." + field + " " + kind,
						location: "body." + field, r: request{method: op.method, path: p, token: e.rw, body: body(field, v)}})
				}
			}
			if len(op.bodyStrings) > 0 && kind == "invalid UTF-8" {
				// JSON text in another encoding, over HTTP only: like every invalid UTF-8 case, since
				// the Lambda events are JSON themselves and cannot carry it (API Gateway's neither).
				p, _, _ := base()
				raw := `{"` + op.bodyStrings[0] + `": "` + v + `"}`
				cases = append(cases, bcase{name: op.method + " " + op.path + " body " + kind, location: "body",
					r: request{method: op.method, path: p, token: e.rw, body: []byte(raw)}, httpOnly: true})
			}
		}
	}
	for _, tr := range e.transports {
		for _, tc := range cases {
			if tc.httpOnly && tr.name != "http" || tc.lambdaOnly && tr.name == "http" {
				continue
			}
			t.Run(tr.name+"/"+tc.name, func(t *testing.T) {
				res := tr.do(t, tc.r)
				if res.status < 400 || res.status >= 500 {
					t.Fatalf("status %d, want a 4xx; body: %s", res.status, res.body)
				}
				expect(t, tc.r, res, res.status)
				p := problemOf(t, res)
				for _, d := range p.Errors {
					if d.Location == tc.location {
						return
					}
				}
				t.Fatalf("problem does not name %s: %s", tc.location, res.body)
			})
		}
	}
}

func firstOr(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// TestBadBytesReachNoHandler: the one finding that answered 500 before, as a plain request.
func TestBadBytesReachNoHandler(t *testing.T) {
	e := newEnv(t)
	for _, q := range []string{"a%00b%40example.com", "a%FFb%40example.com"} {
		r := request{method: "GET", path: "/customers?email=" + q, token: e.rw}
		res := call(t, e.transports[0], r, http.StatusUnprocessableEntity)
		if p := problemOf(t, res); p.Code != "invalid_text" || len(p.Errors) != 1 || p.Errors[0].Location != "query.email" {
			t.Fatalf("GET /customers?email=%s: %s", q, res.body)
		}
	}
}
