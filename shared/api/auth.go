package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/danielgtaylor/huma/v2"
	"github.com/golang-jwt/jwt/v5"
)

// Scopes a token may carry.
const (
	ScopeRead  = "bank:read"
	ScopeWrite = "bank:write"
)

// AuthConfig says how bearer tokens are verified: an HS256 shared secret (local development) or
// a JWKS URL serving RS256/ES256 keys (a real identity provider, such as Cognito). Exactly one.
type AuthConfig struct {
	Secret   []byte
	JWKSURL  string
	Issuer   string // checked when set
	Audience string // checked when set
}

// DefaultDevSecretPath is where the local API and `fin token` share their development secret:
// outside any checkout, so it is never committed, and readable by root only.
const DefaultDevSecretPath = "/var/lib/fin-orchestrator/jwt-dev-secret"

// AuthConfigFromEnv reads FIN_JWKS_URL, FIN_JWT_SECRET, FIN_JWT_ISSUER and FIN_JWT_AUDIENCE
// through getenv (a settings.Env's Get: every name read must be declared in shared/settings).
// With neither a JWKS URL nor a secret, devSecretPath (when not empty) supplies the secret,
// created on first use.
func AuthConfigFromEnv(getenv func(string) string, devSecretPath string) (AuthConfig, error) {
	c := AuthConfig{
		JWKSURL:  getenv("FIN_JWKS_URL"),
		Secret:   []byte(getenv("FIN_JWT_SECRET")),
		Issuer:   getenv("FIN_JWT_ISSUER"),
		Audience: getenv("FIN_JWT_AUDIENCE"),
	}
	if c.JWKSURL != "" || len(c.Secret) > 0 || devSecretPath == "" {
		return c, nil
	}
	secret, err := DevSecret(devSecretPath)
	if err != nil {
		return AuthConfig{}, err
	}
	c.Secret = secret
	return c, nil
}

// DevSecret returns the development signing secret kept at path, creating it (32 random bytes,
// mode 0600) the first time.
func DevSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return []byte(strings.TrimSpace(string(b))), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read development secret %s: %w", path, err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("make development secret: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("make development secret: %w", err)
	}
	// O_EXCL: when two processes start at once, one writes and the other reads what it wrote.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		time.Sleep(50 * time.Millisecond)
		return DevSecret(path)
	}
	if err != nil {
		return nil, fmt.Errorf("write development secret %s: %w", path, err)
	}
	if _, err := f.WriteString(secret + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("write development secret %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write development secret %s: %w", path, err)
	}
	return []byte(secret), nil
}

// IssueToken signs an HS256 token for subject with scopes, valid for ttl: what `fin token` prints.
func IssueToken(secret []byte, subject string, scopes []string, ttl time.Duration) (string, error) {
	now := time.Now()
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   subject,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Scope: strings.Join(scopes, " "),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}

// claims carries scopes the OAuth 2 way (a space-separated "scope", as Cognito access tokens do)
// or as an "scp" array (as some other providers do).
type claims struct {
	jwt.RegisteredClaims
	Scope    string   `json:"scope,omitempty"`
	Scp      []string `json:"scp,omitempty"`
	ClientID string   `json:"client_id,omitempty"`
}

// principal is who a verified token speaks for.
type principal struct {
	Subject string
	Scopes  map[string]bool
}

// verifier checks bearer tokens. A token verified once is remembered (until it expires, at most
// a minute) so a client's every request does not pay for the signature check again.
type verifier struct {
	keyfunc jwt.Keyfunc
	parser  *jwt.Parser

	mu   sync.Mutex
	seen map[string]verified
}

type verified struct {
	p     principal
	until time.Time
}

// maxRemembered bounds the memory the cache of verified tokens may take.
const maxRemembered = 4096

func newVerifier(ctx context.Context, c AuthConfig) (*verifier, error) {
	opts := []jwt.ParserOption{jwt.WithExpirationRequired(), jwt.WithLeeway(30 * time.Second)}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	if c.Audience != "" {
		opts = append(opts, jwt.WithAudience(c.Audience))
	}
	v := &verifier{}
	switch {
	case c.JWKSURL != "" && len(c.Secret) > 0:
		return nil, errors.New("auth: set either a JWKS URL or a shared secret, not both")
	case c.JWKSURL != "":
		kf, err := keyfunc.NewDefaultCtx(ctx, []string{c.JWKSURL})
		if err != nil {
			return nil, fmt.Errorf("auth: load JWKS from %s: %w", c.JWKSURL, err)
		}
		v.keyfunc = kf.Keyfunc
		// Only asymmetric algorithms: a JWKS never holds a secret we could share.
		opts = append(opts, jwt.WithValidMethods([]string{"RS256", "RS384", "RS512", "ES256", "ES384", "PS256"}))
	case len(c.Secret) >= 32:
		secret := c.Secret
		v.keyfunc = func(*jwt.Token) (any, error) { return secret, nil }
		opts = append(opts, jwt.WithValidMethods([]string{"HS256"}))
	case len(c.Secret) > 0:
		return nil, errors.New("auth: the shared secret must be at least 32 bytes")
	default:
		return nil, errors.New("auth: no JWKS URL and no shared secret configured")
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

func (v *verifier) verify(header string) (principal, error) {
	raw, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || raw == "" {
		return principal{}, errors.New("send an Authorization: Bearer <token> header")
	}
	now := time.Now()
	v.mu.Lock()
	hit, found := v.seen[raw]
	v.mu.Unlock()
	if found && now.Before(hit.until) {
		return hit.p, nil
	}
	p, exp, err := v.check(raw)
	if err != nil {
		return principal{}, err
	}
	until := now.Add(time.Minute)
	if exp.Before(until) {
		until = exp
	}
	v.mu.Lock()
	if len(v.seen) >= maxRemembered {
		v.seen = nil // start over rather than track recency: a full cache is rare
	}
	if v.seen == nil {
		v.seen = make(map[string]verified)
	}
	v.seen[raw] = verified{p: p, until: until}
	v.mu.Unlock()
	return p, nil
}

// check verifies the token's signature and claims.
func (v *verifier) check(raw string) (principal, time.Time, error) {
	var c claims
	if _, err := v.parser.ParseWithClaims(strings.TrimSpace(raw), &c, v.keyfunc); err != nil {
		return principal{}, time.Time{}, fmt.Errorf("invalid bearer token: %w", err)
	}
	p := principal{Subject: c.Subject, Scopes: map[string]bool{}}
	if p.Subject == "" {
		p.Subject = c.ClientID
	}
	if p.Subject == "" {
		return principal{}, time.Time{}, errors.New("invalid bearer token: no sub claim")
	}
	for _, s := range strings.Fields(c.Scope) {
		p.Scopes[s] = true
	}
	for _, s := range c.Scp {
		p.Scopes[s] = true
	}
	return p, c.ExpiresAt.Time, nil
}

type principalKey struct{}

func principalOf(ctx context.Context) principal {
	p, _ := ctx.Value(principalKey{}).(principal)
	return p
}

// requireScopes is the Huma middleware that enforces each operation's declared security: 401
// without a valid token, 403 without every scope the operation names.
func requireScopes(api huma.API, v *verifier) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		security := ctx.Operation().Security
		if len(security) == 0 {
			next(ctx)
			return
		}
		p, err := v.verify(ctx.Header("Authorization"))
		if err != nil {
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="fin-orchestrator"`)
			writeProblem(api, ctx, newProblem(http.StatusUnauthorized, "unauthorized", err.Error(), "header.Authorization"))
			return
		}
		for _, req := range security {
			for _, s := range req[bearerScheme] {
				if !p.Scopes[s] {
					ctx.SetHeader("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+s+`"`)
					writeProblem(api, ctx, newProblem(http.StatusForbidden, "insufficient_scope", "this operation needs the scope "+s, "header.Authorization"))
					return
				}
			}
		}
		setLogSubject(ctx.Context(), p.Subject)
		next(huma.WithValue(ctx, principalKey{}, p))
	}
}

// writeProblem answers with p from a middleware, as Huma does for handler errors.
func writeProblem(api huma.API, ctx huma.Context, p *Problem) {
	ctx.SetHeader("Content-Type", "application/problem+json")
	ctx.SetStatus(p.Status)
	_ = api.Marshal(ctx.BodyWriter(), "application/problem+json", p)
}
