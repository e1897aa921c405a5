package bearer_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bearer"
)

func TestRequire(t *testing.T) {
	h := bearer.Require("s3cret", "fin test", "see .fin/sql.token", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	}))
	for _, tc := range []struct {
		name, auth string
		status     int
	}{
		{"right token", "Bearer s3cret", 200},
		{"no header", "", 401},
		{"wrong token", "Bearer nope", 401},
		{"token without the scheme", "s3cret", 401},
		{"other scheme", "Basic s3cret", 401},
		{"prefix of the token", "Bearer s3c", 401},
		{"token with more after it", "Bearer s3cretX", 401},
		{"scheme only", "Bearer ", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if tc.status == 401 && (w.Header().Get("WWW-Authenticate") != `Bearer realm="fin test"` ||
				!strings.Contains(w.Body.String(), "see .fin/sql.token")) {
				t.Errorf("401 without challenge or hint: %q %q", w.Header().Get("WWW-Authenticate"), w.Body.String())
			}
		})
	}
	if bearer.Equal("", "") {
		t.Error("an empty expected token must match nothing")
	}
}
