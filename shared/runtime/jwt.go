package runtime

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// JWTAuthorizer checks bearer tokens as API Gateway's JWT authorizer does before a request
// reaches the function, here against the local HS256 development secret; the claims reach the
// function as strings in the event. With no secret (a JWKS deployment), it returns nil and the
// function's own verification stands alone.
func JWTAuthorizer(secret []byte) Authorizer {
	if len(secret) == 0 {
		return nil
	}
	return func(r *http.Request) (map[string]string, error) {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return nil, errors.New("no bearer token")
		}
		claims := jwt.MapClaims{}
		_, err := jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return secret, nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
		if err != nil {
			return nil, err
		}
		out := map[string]string{}
		for k, v := range claims {
			out[k] = fmt.Sprint(v)
		}
		return out, nil
	}
}
