package api

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/danielgtaylor/huma/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/fin-orchestrator/fin-orchestrator/shared/secretfile"
)

// Scopes a token may carry. bank:read and bank:write say what a token may do; bank:service says
// whom for: every customer. A token without bank:service must name the customer it acts for.
const (
	ScopeRead    = "bank:read"
	ScopeWrite   = "bank:write"
	ScopeService = "bank:service"
	// ScopeOperator lets a token act on the pipeline from the console or `fin` (build now, replay
	// the DLQ, re-snapshot a table); it grants no API route.
	ScopeOperator = "bank:operator"
)

// apiScopes are the scopes the scope map may grant.
var apiScopes = []string{ScopeRead, ScopeWrite, ScopeService, ScopeOperator}

// DefaultCustomerClaim is the claim naming the customer a token acts for, unless
// FIN_JWT_CUSTOMER_CLAIM names another (a Cognito custom attribute, an Auth0 namespaced claim).
const DefaultCustomerClaim = "customer_id"

// AuthConfig says how bearer tokens are verified: an HS256 shared secret (local development) or
// a JWKS URL serving a real identity provider's keys (Cognito, Auth0). Exactly one.
type AuthConfig struct {
	Secret  []byte
	JWKSURL string
	// Issuer is the iss every token must carry; required with a JWKS URL.
	Issuer string
	// Audience is what a token's aud must contain, or, in a token without aud, its client_id
	// (Cognito access tokens), as API Gateway's JWT authorizer matches; required with a JWKS URL.
	// For Cognito it is the app client id, for Auth0 the API's identifier.
	Audience string
	// ScopeMap grants API scopes for the provider's scope names, such as a Cognito resource
	// server's "fin-api/read" -> bank:read. A token scope that is itself an API scope always counts.
	ScopeMap map[string][]string
	// CustomerClaim names the claim that binds a token to one customer (a UUID string); empty
	// means DefaultCustomerClaim.
	CustomerClaim string
}

// DefaultDevSecretPath is where the local API and `fin token` share their development secret:
// outside any checkout, so it is never committed, and readable by root only.
const DefaultDevSecretPath = "/var/lib/fin-orchestrator/jwt-dev-secret"

// The issuer and audience of locally signed (HS256) tokens when none is configured, so the local
// API and its emulated API Gateway authorizer check both claims as in AWS.
const (
	DevIssuer   = "fin-orchestrator-local"
	DevAudience = "fin-local"
)

// AuthConfigFromEnv reads FIN_JWKS_URL, FIN_JWT_SECRET, FIN_JWT_ISSUER, FIN_JWT_AUDIENCE,
// FIN_JWT_SCOPE_MAP and FIN_JWT_CUSTOMER_CLAIM through getenv (a settings.Env's Get: every name
// read must be declared in shared/settings). With neither a JWKS URL nor a secret, devSecretPath
// (when not empty) supplies the secret, created on first use. With a secret, issuer and audience
// default to DevIssuer and DevAudience.
func AuthConfigFromEnv(getenv func(string) string, devSecretPath string) (AuthConfig, error) {
	c := AuthConfig{
		JWKSURL:  getenv("FIN_JWKS_URL"),
		Secret:   []byte(getenv("FIN_JWT_SECRET")),
		Issuer:   getenv("FIN_JWT_ISSUER"),
		Audience: getenv("FIN_JWT_AUDIENCE"),
		// Trimmed: a claim name with spaces is a typo, never meant.
		CustomerClaim: strings.TrimSpace(getenv("FIN_JWT_CUSTOMER_CLAIM")),
	}
	var err error
	if c.ScopeMap, err = ParseScopeMap(getenv("FIN_JWT_SCOPE_MAP")); err != nil {
		return AuthConfig{}, fmt.Errorf("FIN_JWT_SCOPE_MAP: %w", err)
	}
	if c.JWKSURL == "" && len(c.Secret) == 0 && devSecretPath != "" {
		if c.Secret, err = DevSecret(devSecretPath); err != nil {
			return AuthConfig{}, err
		}
	}
	if c.JWKSURL == "" && len(c.Secret) > 0 {
		c.Issuer = cmp.Or(c.Issuer, DevIssuer)
		c.Audience = cmp.Or(c.Audience, DevAudience)
	}
	return c, c.check()
}

// check refuses a configuration that would accept tokens meant for someone else.
func (c AuthConfig) check() error {
	switch {
	case c.JWKSURL != "" && len(c.Secret) > 0:
		return errors.New("auth: set either a JWKS URL (FIN_JWKS_URL) or a shared secret (FIN_JWT_SECRET), not both")
	case c.JWKSURL != "" && c.Issuer == "":
		return errors.New("auth: a JWKS URL (FIN_JWKS_URL) needs the issuer its tokens carry (FIN_JWT_ISSUER, e.g. https://cognito-idp.<region>.amazonaws.com/<pool id>)")
	case c.JWKSURL != "" && c.Audience == "":
		return errors.New("auth: a JWKS URL (FIN_JWKS_URL) needs the audience (FIN_JWT_AUDIENCE: the Cognito app client id, or the Auth0 API identifier)")
	case c.JWKSURL == "" && len(c.Secret) == 0:
		return errors.New("auth: no JWKS URL (FIN_JWKS_URL) and no shared secret (FIN_JWT_SECRET) configured")
	case c.JWKSURL == "" && len(c.Secret) < 32:
		return errors.New("auth: the shared secret (FIN_JWT_SECRET) must be at least 32 bytes")
	}
	return nil
}

// ParseScopeMap reads "provider-scope=bank:read,other=bank:write": which API scope each of the
// identity provider's scopes grants (bank:read, bank:write or bank:service). A provider scope
// may be listed more than once to grant several.
func ParseScopeMap(s string) (map[string][]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	m := map[string][]string{}
	for _, entry := range strings.Split(s, ",") {
		from, to, ok := strings.Cut(strings.TrimSpace(entry), "=")
		from, to = strings.TrimSpace(from), strings.TrimSpace(to)
		switch {
		case !ok || from == "" || strings.ContainsAny(from, " \t"):
			return nil, fmt.Errorf("entry %q: want <provider scope>=<%s>", entry, strings.Join(apiScopes, "|"))
		case !slices.Contains(apiScopes, to):
			return nil, fmt.Errorf("entry %q: %q is not an API scope (%s)", entry, to, strings.Join(apiScopes, ", "))
		}
		m[from] = append(m[from], to)
	}
	return m, nil
}

// DevSecret returns the development signing secret kept at path, creating it (32 random bytes,
// mode 0600) the first time. A file that is too open, too short or not a secret is an error
// naming the file and the fix, never silently replaced: tokens signed with it may be in use.
func DevSecret(path string) ([]byte, error) {
	secret, err := readDevSecret(path)
	if !errors.Is(err, os.ErrNotExist) {
		return secret, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("make development secret: %w", err)
	}
	fresh := base64.RawURLEncoding.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("make development secret: %w", err)
	}
	// O_EXCL: when two processes start at once, one writes and the other reads what it wrote.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return awaitDevSecret(path)
	}
	if err != nil {
		return nil, fmt.Errorf("write development secret %s: %w", path, err)
	}
	_, werr := f.WriteString(fresh + "\n")
	if err := errors.Join(werr, f.Close()); err != nil {
		return nil, fmt.Errorf("write development secret %s: %w", path, err)
	}
	return []byte(fresh), nil
}

// awaitDevSecret reads a secret another process has just created, giving its writer a moment
// to finish; a file still unusable after that is reported, not retried for ever.
func awaitDevSecret(path string) ([]byte, error) {
	var err error
	for range 20 {
		var secret []byte
		if secret, err = readDevSecret(path); err == nil {
			return secret, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, err
}

// minDevSecret is HS256's key length: RFC 7518 section 3.2 asks for at least 256 bits.
const minDevSecret = 32

// readDevSecret reads the secret at path, checking its mode and content.
func readDevSecret(path string) ([]byte, error) {
	b, err := secretfile.Read(path, "development secret")
	if err != nil {
		return nil, err
	}
	secret := strings.TrimSpace(string(b))
	fix := fmt.Sprintf("remove %s (tokens signed with it stop working) and run fin token again to make a new one", path)
	if len(secret) < minDevSecret {
		return nil, fmt.Errorf("development secret %s has %d bytes, fewer than %d (a crash while writing it?): %s", path, len(secret), minDevSecret, fix)
	}
	for _, c := range secret {
		if c <= ' ' || c > '~' {
			return nil, fmt.Errorf("development secret %s is corrupt (holds %q, not printable ASCII): %s", path, c, fix)
		}
	}
	return []byte(secret), nil
}

// IssueToken signs an HS256 token for subject with scopes, valid for ttl, with no issuer or
// audience: for a verifier configured with neither (tests). See AuthConfig.IssueToken.
func IssueToken(secret []byte, subject string, scopes []string, ttl time.Duration) (string, error) {
	return AuthConfig{Secret: secret}.IssueToken(subject, scopes, ttl)
}

// IssueToken signs what `fin token` prints: an HS256 token shaped like a Cognito access token
// (iss, client_id = the audience, token_use "access", a space-separated scope), so the local
// stack exercises the claims a real one carries. For a service token, scopes include
// ScopeService; see IssueCustomerToken for a token bound to one customer.
func (c AuthConfig) IssueToken(subject string, scopes []string, ttl time.Duration) (string, error) {
	return c.issue(subject, uuid.Nil, scopes, ttl)
}

// IssueCustomerToken signs a token that acts for customer alone, naming it in the configured
// customer claim (`fin token --customer ID`).
func (c AuthConfig) IssueCustomerToken(subject string, customer uuid.UUID, scopes []string, ttl time.Duration) (string, error) {
	if customer == uuid.Nil {
		return "", errors.New("a customer token needs a customer id")
	}
	return c.issue(subject, customer, scopes, ttl)
}

func (c AuthConfig) issue(subject string, customer uuid.UUID, scopes []string, ttl time.Duration) (string, error) {
	now := time.Now()
	tc := jwt.MapClaims{"sub": subject, "iat": now.Unix(), "exp": now.Add(ttl).Unix(), "scope": strings.Join(scopes, " ")}
	if c.Issuer != "" {
		tc["iss"] = c.Issuer
	}
	if c.Audience != "" {
		tc["client_id"], tc["token_use"] = c.Audience, "access"
	}
	if customer != uuid.Nil {
		tc[c.customerClaim()] = customer.String()
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, tc).SignedString(c.Secret)
}

func (c AuthConfig) customerClaim() string { return cmp.Or(c.CustomerClaim, DefaultCustomerClaim) }

// claims are what the API reads of a token, as Cognito and Auth0 write them: scopes as a
// space-separated "scope" (both), an "scp" list (Okta, Entra) or Auth0's RBAC "permissions".
// all keeps every claim, for the configurable customer claim.
type claims struct {
	jwt.RegisteredClaims
	Scope       string    `json:"scope,omitempty"`
	Scp         stringSet `json:"scp,omitempty"`
	Permissions []string  `json:"permissions,omitempty"`
	ClientID    string    `json:"client_id,omitempty"`
	TokenUse    string    `json:"token_use,omitempty"`
	all         map[string]json.RawMessage
}

func (c *claims) UnmarshalJSON(b []byte) error {
	type plain claims // without this method
	if err := json.Unmarshal(b, (*plain)(c)); err != nil {
		return err
	}
	return json.Unmarshal(b, &c.all)
}

// customer reads the customer claim named name: absent is uuid.Nil; anything but a UUID string
// naming a customer is an error, never a token for no one in particular.
func (c *claims) customer(name string) (uuid.UUID, error) {
	raw, ok := c.all[name]
	if !ok || string(raw) == "null" {
		return uuid.Nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return uuid.Nil, fmt.Errorf("invalid bearer token: claim %s is not a string (want a customer id)", name)
	}
	id, err := uuid.Parse(s)
	if err != nil || id == uuid.Nil {
		return uuid.Nil, fmt.Errorf("invalid bearer token: claim %s is not a customer id (a UUID)", name)
	}
	return id, nil
}

// stringSet is a claim that is either one string (space-separated) or a list of strings.
type stringSet []string

func (s *stringSet) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = strings.Fields(one)
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("want a string or a list of strings: %w", err)
	}
	*s = list
	return nil
}

// principal is who a verified token speaks for. Customer, when not uuid.Nil, is the one customer
// the token acts for, whatever its scopes; otherwise it is a service token if it has
// ScopeService, and refused if not.
type principal struct {
	Subject  string
	Scopes   map[string]bool
	Customer uuid.UUID
}

// verifier checks bearer tokens. A token verified once is remembered, keyed by its exact text,
// so a client's every request does not pay for the signature check again (RS256 ~30 us, ES256
// ~100 us). A remembered verification is never worth more than a fresh one: it ends when the
// token expires (at exp, before the leeway a fresh check would still allow) and after a minute
// at most, and with a JWKS it holds only while the key that verified it is still in the key
// set the API has: a key rotated out of the set ends it at once, whatever the minute.
type verifier struct {
	keyfunc  jwt.Keyfunc
	parser   *jwt.Parser
	audience string
	scopeMap map[string][]string
	claim    string // the customer claim
	now      func() time.Time
	// keyHeld says whether key is still the JWKS's key kid, without waiting for a refresh;
	// nil for the fixed HS256 secret.
	keyHeld func(kid string, key any) bool

	mu        sync.Mutex
	seen      map[string]verified
	seenBytes int // the length of the tokens in seen, bounded by maxRememberedBytes
}

type verified struct {
	p     principal
	until time.Time
	kid   string
	key   any // what verified the signature, for keyHeld
}

// maxRemembered and maxRememberedBytes bound the memory the cache of verified tokens may take
// (a token is a few hundred bytes to a few KB); rememberFor bounds how long a verification is
// trusted without a fresh look at the signature.
const (
	maxRemembered      = 4096
	maxRememberedBytes = 4 << 20
	rememberFor        = time.Minute
)

func newVerifier(ctx context.Context, c AuthConfig) (*verifier, error) {
	return newVerifierAt(ctx, c, time.Now)
}

// newVerifierAt is newVerifier on the clock now (tests move it past a token's expiry).
func newVerifierAt(ctx context.Context, c AuthConfig, now func() time.Time) (*verifier, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	// iat in the future is refused, as API Gateway refuses it; nbf is checked whenever present.
	opts := []jwt.ParserOption{jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(30 * time.Second), jwt.WithTimeFunc(now)}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	v := &verifier{audience: c.Audience, scopeMap: c.ScopeMap, claim: c.customerClaim(), now: now}
	if c.JWKSURL != "" {
		kf, err := keyfunc.NewDefaultCtx(ctx, []string{c.JWKSURL})
		if err != nil {
			return nil, fmt.Errorf("auth: load JWKS from %s: %w", c.JWKSURL, err)
		}
		v.keyfunc = kf.Keyfunc
		v.keyHeld = keyHeldBy(kf.Storage())
		// Only asymmetric algorithms: a JWKS never holds a secret we could share.
		opts = append(opts, jwt.WithValidMethods([]string{"RS256", "RS384", "RS512", "ES256", "ES384", "PS256"}))
	} else {
		secret := c.Secret
		v.keyfunc = func(*jwt.Token) (any, error) { return secret, nil }
		opts = append(opts, jwt.WithValidMethods([]string{"HS256"}))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// keyHeldBy says whether the key set in storage still holds key under kid. It never waits: the
// lookup runs under a context already cancelled, so a kid the set lacks answers false at once
// instead of waiting for a refresh (the full check that follows does that).
func keyHeldBy(storage jwkset.Storage) func(kid string, key any) bool {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	return func(kid string, key any) bool {
		jwk, err := storage.KeyRead(done, kid)
		if err != nil {
			return false
		}
		held := jwk.Key()
		if pk, ok := held.(interface{ Public() crypto.PublicKey }); ok {
			held = pk.Public()
		}
		eq, ok := held.(interface{ Equal(crypto.PublicKey) bool })
		return ok && eq.Equal(key)
	}
}

var bearerPrefix = []byte("Bearer ")

// verifyHeader is verify of the Authorization header's bytes as the server holds them: a
// remembered token is looked up without copying them.
func (v *verifier) verifyHeader(header []byte) (principal, error) {
	if raw, ok := bytes.CutPrefix(header, bearerPrefix); ok && len(raw) > 0 {
		v.mu.Lock()
		hit, found := v.seen[string(raw)] // no copy: the conversion is only the lookup's
		v.mu.Unlock()
		if found && v.holds(hit) {
			return hit.p, nil
		}
	}
	return v.verify(string(header))
}

// holds reports whether a remembered verification still stands: the token has not expired, the
// minute is not over, and a JWKS still has the key that verified it.
func (v *verifier) holds(hit verified) bool {
	return v.now().Before(hit.until) && (v.keyHeld == nil || v.keyHeld(hit.kid, hit.key))
}

func (v *verifier) verify(header string) (principal, error) {
	raw, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || raw == "" {
		return principal{}, errors.New("send an Authorization: Bearer <token> header")
	}
	// The exact text, not a digest: Go's map compares the whole key, and SHA-256 of a token cost
	// more than the rest of a remembered token's check.
	v.mu.Lock()
	hit, found := v.seen[raw]
	v.mu.Unlock()
	if found && v.holds(hit) {
		return hit.p, nil
	}
	now := v.now()
	p, exp, kid, key, err := v.check(raw)
	if err != nil {
		return principal{}, err
	}
	// A JWKS token without a kid was checked against every key: which one is not known, so
	// whether it is still held cannot be told; it is checked afresh each time.
	if v.keyHeld != nil && (kid == "" || !v.keyHeld(kid, key)) {
		return p, nil
	}
	until := now.Add(rememberFor)
	if exp.Before(until) {
		until = exp
	}
	v.mu.Lock()
	if len(v.seen) >= maxRemembered || v.seenBytes+len(raw) > maxRememberedBytes {
		v.seen, v.seenBytes = nil, 0 // start over rather than track recency: a full cache is rare
	}
	if v.seen == nil {
		v.seen = make(map[string]verified)
	}
	// A copy: raw may alias a request buffer the server reuses for the next request.
	if _, again := v.seen[raw]; !again {
		v.seenBytes += len(raw)
	}
	v.seen[strings.Clone(raw)] = verified{p: p, until: until, kid: kid, key: key}
	v.mu.Unlock()
	return p, nil
}

// check verifies the token's signature and claims; kid and key are what verified the signature
// (kid "" when a JWKS token named none and was tried against every key).
func (v *verifier) check(raw string) (p principal, exp time.Time, kid string, key any, err error) {
	var c claims
	if _, err := v.parser.ParseWithClaims(strings.TrimSpace(raw), &c, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		key, err = v.keyfunc(t)
		if _, several := key.(jwt.VerificationKeySet); several {
			kid = ""
		}
		return key, err
	}); err != nil {
		return principal{}, time.Time{}, "", nil, fmt.Errorf("invalid bearer token: %w", err)
	}
	p, err = v.principalOf(&c)
	return p, c.ExpiresAt.Time, kid, key, err
}

// principalOf reads who a verified token speaks for.
func (v *verifier) principalOf(c *claims) (principal, error) {
	// API Gateway's rule: aud when the token has one, else client_id (Cognito access tokens).
	if v.audience != "" {
		if len(c.Audience) > 0 && !slices.Contains(c.Audience, v.audience) {
			return principal{}, errors.New("invalid bearer token: aud is not this API")
		}
		if len(c.Audience) == 0 && c.ClientID != v.audience {
			return principal{}, errors.New("invalid bearer token: neither aud nor client_id is this API")
		}
	}
	// A Cognito ID token names the app client in aud too: only access tokens authorise API calls.
	if c.TokenUse != "" && c.TokenUse != "access" {
		return principal{}, fmt.Errorf("invalid bearer token: token_use %q, send the access token", c.TokenUse)
	}
	p := principal{Subject: cmp.Or(c.Subject, c.ClientID), Scopes: map[string]bool{}}
	if p.Subject == "" {
		return principal{}, errors.New("invalid bearer token: no sub claim")
	}
	var err error
	if p.Customer, err = c.customer(v.claim); err != nil {
		return principal{}, err
	}
	for _, list := range [][]string{strings.Fields(c.Scope), c.Scp, c.Permissions} {
		for _, s := range list {
			p.Scopes[s] = true
			for _, granted := range v.scopeMap[s] {
				p.Scopes[granted] = true
			}
		}
	}
	return p, nil
}

// keyOwner is whose idempotency keys a request uses: the subject, and for a customer token its
// customer too, so two tokens of one subject for different customers never replay each other's
// answers.
func (p principal) keyOwner() string {
	if p.Customer != uuid.Nil {
		return p.Subject + " customer " + p.Customer.String()
	}
	return p.Subject
}

type principalKey struct{}

func principalOf(ctx context.Context) principal {
	p, _ := ctx.Value(principalKey{}).(principal)
	return p
}

// requireScopes is the Huma middleware that enforces each operation's declared security: 401
// without a valid token, 403 when the token meets none of the operation's requirements (see
// security). A token that names a customer meets only customerScheme's requirements, one
// without only bearerScheme's (which include ScopeService).
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
		if refusal := p.refusal(security, v.claim); refusal != nil {
			if refusal.scope != "" {
				ctx.SetHeader("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+refusal.scope+`"`)
			}
			writeProblem(api, ctx, newProblem(http.StatusForbidden, refusal.code, refusal.detail, "header.Authorization"))
			return
		}
		setLogSubject(ctx.Context(), p.Subject)
		next(huma.WithValue(ctx, principalKey{}, p))
	}
}

type refusal struct{ code, detail, scope string }

// refusal says why p meets none of security's alternatives, or nil when it meets one.
func (p principal) refusal(security []map[string][]string, claim string) *refusal {
	scheme := bearerScheme
	if p.Customer != uuid.Nil {
		scheme = customerScheme
	}
	var missing string
	for _, req := range security {
		scopes, ok := req[scheme]
		if !ok {
			continue
		}
		missing = ""
		for _, s := range scopes {
			if !p.Scopes[s] {
				missing = s
				break
			}
		}
		if missing == "" {
			return nil
		}
	}
	switch {
	case p.Customer != uuid.Nil && missing == "":
		return &refusal{"service_only", "a customer token cannot do this: it needs a service token (scope " + ScopeService + ")", ""}
	case missing == ScopeService:
		return &refusal{"insufficient_scope", "this API needs a service token (scope " + ScopeService +
			") or a token naming the customer it acts for (claim " + claim + ")", ScopeService}
	}
	return &refusal{"insufficient_scope", "this operation needs the scope " + missing, missing}
}

// writeProblem answers with p from a middleware, as Huma does for handler errors.
func writeProblem(api huma.API, ctx huma.Context, p *Problem) {
	ctx.SetHeader("Content-Type", "application/problem+json")
	ctx.SetStatus(p.Status)
	_ = api.Marshal(ctx.BodyWriter(), "application/problem+json", p)
}
