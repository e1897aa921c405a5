package lambdalocal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/fin-orchestrator/fin-orchestrator/shared/samtemplate"
)

// JWTAuthorizer checks tokens as API Gateway's HTTP API JWT authorizer configured by c does
// (API Gateway developer guide, "Control access to HTTP APIs with JWT authorizers"): the token
// from c.IdentitySource, with or without "Bearer "; iss equal to c.Issuer; aud, or client_id when
// the token has no aud, among c.Audience; exp after now, nbf and iat before now, with no clock
// skew allowed; an RSA signature by a key of the issuer's JWKS, found through its OIDC discovery
// document. With a secret (locally, where no identity provider signs), the signature is HS256
// with that secret instead; every claim is checked the same. The claims reach the function as
// strings in the event, as API Gateway passes them.
func JWTAuthorizer(ctx context.Context, c samtemplate.JWTAuthorizer, secret []byte) (Authorizer, error) {
	header, ok := strings.CutPrefix(c.IdentitySource, "$request.header.")
	switch {
	case !ok || header == "":
		return nil, fmt.Errorf("IdentitySource %q: a JWT authorizer reads the token from a header ($request.header.<name>)", c.IdentitySource)
	case c.Issuer == "":
		return nil, errors.New("JwtConfiguration.issuer is empty (template parameter JwtIssuer, FIN_JWT_ISSUER)")
	case len(c.Audience) == 0 || slices.Contains(c.Audience, ""):
		return nil, errors.New("JwtConfiguration.audience is empty (template parameter JwtAudience, FIN_JWT_AUDIENCE)")
	}
	opts := []jwt.ParserOption{jwt.WithIssuer(c.Issuer), jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithJSONNumber()}
	var keys jwt.Keyfunc
	if len(secret) > 0 {
		keys = func(*jwt.Token) (any, error) { return secret, nil }
		opts = append(opts, jwt.WithValidMethods([]string{"HS256"}))
	} else {
		jwksURL, err := discoverJWKS(ctx, c.Issuer)
		if err != nil {
			return nil, err
		}
		kf, err := keyfunc.NewDefaultCtx(ctx, []string{jwksURL})
		if err != nil {
			return nil, fmt.Errorf("load JWKS %s of issuer %s: %w", jwksURL, c.Issuer, err)
		}
		keys = kf.Keyfunc
		// "Currently, only RSA-based algorithms are supported."
		opts = append(opts, jwt.WithValidMethods([]string{"RS256", "RS384", "RS512"}))
	}
	parser := jwt.NewParser(opts...)
	return func(r *http.Request) (Authorization, error) {
		raw := strings.TrimPrefix(r.Header.Get(header), "Bearer ")
		if raw == "" {
			return Authorization{}, errors.New("no token in " + header)
		}
		claims := jwt.MapClaims{}
		if _, err := parser.ParseWithClaims(raw, claims, keys); err != nil {
			return Authorization{}, err
		}
		aud, err := claims.GetAudience()
		if err != nil {
			return Authorization{}, err
		}
		// API Gateway evaluates client_id only when the token has no aud.
		if len(aud) > 0 && !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(c.Audience, a) }) {
			return Authorization{}, errors.New("aud matches no configured audience")
		}
		if clientID, _ := claims["client_id"].(string); len(aud) == 0 && !slices.Contains(c.Audience, clientID) {
			return Authorization{}, errors.New("no aud, and client_id matches no configured audience")
		}
		a := Authorization{Claims: map[string]string{}}
		for k, v := range claims {
			a.Claims[k] = fmt.Sprint(v)
		}
		if s, ok := claims["scope"].(string); ok {
			a.Scopes = append(a.Scopes, strings.Fields(s)...)
		}
		switch scp := claims["scp"].(type) {
		case string:
			a.Scopes = append(a.Scopes, strings.Fields(scp)...)
		case []any:
			for _, s := range scp {
				if s, ok := s.(string); ok {
					a.Scopes = append(a.Scopes, s)
				}
			}
		}
		return a, nil
	}, nil
}

// discoverJWKS reads jwks_uri from the issuer's OIDC discovery document, where API Gateway
// finds the keys.
func discoverJWKS(ctx context.Context, issuer string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	url := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("discover the keys of issuer %s: %w", issuer, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("discover the keys of issuer %s: %w", issuer, err)
	}
	defer resp.Body.Close()
	var doc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("discover the keys of issuer %s: %s answered %s", issuer, url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || doc.JWKSURI == "" {
		return "", fmt.Errorf("discover the keys of issuer %s: %s has no jwks_uri (%v)", issuer, url, err)
	}
	return doc.JWKSURI, nil
}
