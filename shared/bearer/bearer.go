// Package bearer checks the shared-secret bearer tokens of the local stack's machine endpoints
// (console, SQL, DLQ, S3 webhook), in constant time. The API's JWTs are shared/api's business.
package bearer

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// Token is the token of r's "Authorization: Bearer <token>" header, or "" when there is none.
func Token(r *http.Request) string {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return ""
	}
	return tok
}

// Equal compares a token given by a client with the expected one in constant time; an empty
// expected token matches nothing.
func Equal(given, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(given), []byte(want)) == 1
}

// Require serves next only to requests whose Authorization header carries token; the others
// get 401 with a WWW-Authenticate challenge for realm and hint, which says where the token is.
func Require(token, realm, hint string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Equal(Token(r), token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`"`)
			http.Error(w, "missing or wrong bearer token ("+hint+")", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
