package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
)

// lockedBuffer is a Buffer the server's goroutines may write to while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Each request writes one EMF line under its route template (never the URL), counting it as a
// request and, by its status, a 4xx or a 5xx: what template.yaml's dashboard plots per route.
func TestRequestMetricsByRoute(t *testing.T) {
	var out lockedBuffer
	e := newEnv(t, func(c *Config) { c.Metrics = &out })
	for _, tc := range []struct {
		r    request
		want int
	}{
		{request{method: "GET", path: "/customers?limit=1", token: e.rw}, http.StatusOK},
		{request{method: "GET", path: "/customers"}, http.StatusUnauthorized},
		{request{method: "GET", path: "/accounts/00000000-0000-0000-0000-000000000001", token: e.rw}, http.StatusNotFound},
	} {
		call(t, e.transports[0], tc.r, tc.want)
	}
	type line struct {
		Function, Route                         string
		Requests, Latency, Errors4xx, Errors5xx float64
		AWS                                     struct {
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
			}
		} `json:"_aws"`
	}
	var got []line
	out.mu.Lock()
	sc := bufio.NewScanner(bytes.NewReader(out.b.Bytes()))
	out.mu.Unlock()
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("not an EMF line: %s", sc.Bytes())
		}
		got = append(got, l)
	}
	want := []struct {
		route     string
		e4xx, e5x float64
	}{{"/customers", 0, 0}, {"/customers", 1, 0}, {"/accounts/:account_id", 1, 0}}
	if len(got) != len(want) {
		t.Fatalf("%d EMF lines for %d requests: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		l := got[i]
		if l.Function != "api" || l.Route != w.route || l.Requests != 1 || l.Errors4xx != w.e4xx || l.Errors5xx != w.e5x || l.Latency <= 0 {
			t.Errorf("line %d: %+v; want route %s, 4xx %v", i, l, w.route, w.e4xx)
		}
		m := l.AWS.CloudWatchMetrics
		if len(m) != 1 || m[0].Namespace != "FinOrchestrator" || len(m[0].Dimensions) != 1 || len(m[0].Dimensions[0]) != 2 {
			t.Errorf("line %d: metrics %+v; want FinOrchestrator by Function and Route", i, m)
		}
	}
}
