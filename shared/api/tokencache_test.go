package api

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fin-orchestrator/fin-orchestrator/shared/oidctest"
)

// clock is a settable time for the verifier.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// remembered says whether v holds a verification of token.
func remembered(v *verifier, token string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.seen[token]
	return ok
}

// TestRememberedTokenExpires: a token verified and remembered is refused once it has expired by
// the API's rule (exp plus the 30 s of clock skew a fresh check allows), though still remembered:
// the cache never accepts what a fresh verification would refuse.
func TestRememberedTokenExpires(t *testing.T) {
	secret := []byte(strings.Repeat("k", 32))
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	exp := t0.Add(10 * time.Minute)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "bench", "scope": ScopeRead,
		"iat": t0.Unix(), "exp": exp.Unix()}).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: t0}
	v, err := newVerifierAt(context.Background(), AuthConfig{Secret: secret}, c.now)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		at     time.Time
		accept bool
	}{
		{exp.Add(-20 * time.Second), true}, // remembered from here
		{exp.Add(-time.Second), true},
		{exp.Add(29 * time.Second), true}, // within the skew a fresh check allows
		{exp.Add(31 * time.Second), false},
		{exp.Add(time.Hour), false},
	} {
		c.set(step.at)
		_, err := v.verify("Bearer " + tok)
		if step.accept != (err == nil) {
			t.Fatalf("at exp%+v: err %v, want accepted %v", step.at.Sub(exp), err, step.accept)
		}
		if !step.accept && !strings.Contains(err.Error(), "expired") {
			t.Errorf("at exp%+v: %v does not say the token expired", step.at.Sub(exp), err)
		}
		if step.at.Before(exp) && !remembered(v, tok) {
			t.Fatalf("at exp%+v: the verification is not remembered, so this test proves nothing", step.at.Sub(exp))
		}
	}
}

// TestRememberedTokenTampered: once a token is remembered, a token that differs from it in any
// byte (its signature, its claims re-encoded under the old signature, its header) is verified
// afresh and refused, and the original still passes.
func TestRememberedTokenTampered(t *testing.T) {
	v, tok, now := readerToken(t, "s")
	if _, err := v.verify("Bearer " + tok); err != nil || !remembered(v, tok) {
		t.Fatalf("the genuine token: %v, remembered %v", err, remembered(v, tok))
	}
	parts := strings.Split(tok, ".")
	flip := func(s string, i int) string { b := []byte(s); b[i] ^= 1; return string(b) }
	escalated := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"reader","scope":"bank:read bank:write bank:service","iat":` +
		jsonNumber(now.Unix()) + `,"exp":` + jsonNumber(now.Add(time.Hour).Unix()) + `}`))
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	for name, forged := range map[string]string{
		"signature byte":             parts[0] + "." + parts[1] + "." + flip(parts[2], len(parts[2])-2),
		"claims under old signature": parts[0] + "." + escalated + "." + parts[2],
		"alg none":                   none + "." + parts[1] + ".",
		"alg none, old signature":    none + "." + parts[1] + "." + parts[2],
	} {
		for range 2 { // the second time too: a refusal is never remembered
			if p, err := v.verify("Bearer " + forged); err == nil {
				t.Errorf("%s: accepted as %+v", name, p)
			}
			if p, err := v.verifyHeader([]byte("Bearer " + forged)); err == nil {
				t.Errorf("%s: accepted from the header's bytes as %+v", name, p)
			}
		}
	}
	if p, err := v.verify("Bearer " + tok); err != nil || p.Scopes[ScopeWrite] {
		t.Errorf("the genuine token after the forgeries: %+v, %v", p, err)
	}
}

// TestRememberedTokenOwnsItsKey: the server reuses a request's buffer for the next request, so
// a token remembered from the header's bytes must not change when those bytes do: the same
// buffer then holding a forged token of the same length is verified afresh and refused.
func TestRememberedTokenOwnsItsKey(t *testing.T) {
	v, tok, _ := readerToken(t, "o")
	buf := []byte("Bearer " + tok)
	if _, err := v.verifyHeader(buf); err != nil || !remembered(v, tok) {
		t.Fatalf("the genuine token: %v, remembered %v", err, remembered(v, tok))
	}
	buf[len(buf)-3] ^= 1 // the next request, in the same buffer: the signature changed
	if p, err := v.verifyHeader(buf); err == nil {
		t.Fatalf("a forged token in the reused buffer: accepted as %+v", p)
	}
	if _, err := v.verifyHeader([]byte("Bearer " + tok)); err != nil || !remembered(v, tok) {
		t.Fatalf("the genuine token again: %v, remembered %v", err, remembered(v, tok))
	}
}

// TestRememberedTokensBoundedInBytes: large tokens start the cache over before it holds more
// than maxRememberedBytes of them, while each is still accepted.
func TestRememberedTokensBoundedInBytes(t *testing.T) {
	secret := []byte(strings.Repeat("b", 32))
	v, err := newVerifier(context.Background(), AuthConfig{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	pad := strings.Repeat("x", 100<<10)
	for i := range 60 {
		tok := readerTokenAt(t, secret, now, jwt.MapClaims{"pad": pad, "n": i})
		if _, err := v.verifyHeader([]byte("Bearer " + tok)); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		v.mu.Lock()
		held, n := v.seenBytes, 0
		for k := range v.seen {
			n += len(k)
		}
		v.mu.Unlock()
		if held != n || held > maxRememberedBytes || held == 0 {
			t.Fatalf("after token %d: %d bytes counted, %d held, bound %d", i, held, n, maxRememberedBytes)
		}
	}
}

// readerToken is an HS256 verifier keyed with fill repeated and a bank:read token of an hour it
// accepts, issued now.
func readerToken(t *testing.T, fill string) (*verifier, string, time.Time) {
	t.Helper()
	secret := []byte(strings.Repeat(fill, 32))
	v, err := newVerifier(context.Background(), AuthConfig{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	return v, readerTokenAt(t, secret, now, nil), now
}

// readerTokenAt is a bank:read token of an hour from now, signed with secret, with extra claims.
func readerTokenAt(t *testing.T, secret []byte, now time.Time, extra jwt.MapClaims) string {
	t.Helper()
	claims := jwt.MapClaims{"sub": "reader", "scope": ScopeRead, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range extra {
		claims[k] = v
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }

// rotatingJWKS is an identity provider whose key set can change: keys by kid.
type rotatingJWKS struct {
	mu   sync.Mutex
	keys map[string]*rsa.PrivateKey
	url  string
}

func newRotatingJWKS(t *testing.T) *rotatingJWKS {
	j := &rotatingJWKS{keys: map[string]*rsa.PrivateKey{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		j.mu.Lock()
		defer j.mu.Unlock()
		var keys []map[string]string
		for kid, k := range j.keys {
			keys = append(keys, map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
				"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
				"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes())})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	}))
	t.Cleanup(srv.Close)
	j.url = srv.URL
	return j
}

// serve replaces the key set with keys (kid, key, kid, key, ...).
func (j *rotatingJWKS) serve(kv ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.keys = map[string]*rsa.PrivateKey{}
	for i := 0; i+1 < len(kv); i += 2 {
		j.keys[kv[i].(string)] = kv[i+1].(*rsa.PrivateKey)
	}
}

// TestRememberedTokenKeyRotatedOut: a token remembered as verified by a JWKS key is refused as
// soon as the API's key set no longer holds that key (rotated out, or replaced under the same
// kid), not a minute later; a token of the new key passes.
func TestRememberedTokenKeyRotatedOut(t *testing.T) {
	newKey := func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	const iss, aud = "https://idp.example", "fin-api"
	sign := func(kid string, k *rsa.PrivateKey) string {
		now := time.Now()
		return oidctest.SignWith(t, jwt.SigningMethodRS256, k, kid, jwt.MapClaims{"sub": "svc", "iss": iss, "aud": aud,
			"scope": ScopeRead, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	}
	for _, c := range []struct {
		name    string
		nextKid string // the kid after the rotation
	}{
		{"key rotated out", "key-2"},
		{"key replaced under its kid", "key-1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			old, next := newKey(), newKey()
			idp := newRotatingJWKS(t)
			idp.serve("key-1", old)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			v, err := newVerifier(ctx, AuthConfig{JWKSURL: idp.url, Issuer: iss, Audience: aud})
			if err != nil {
				t.Fatal(err)
			}
			oldTok, nextTok := sign("key-1", old), sign(c.nextKid, next)
			if _, err := v.verify("Bearer " + oldTok); err != nil || !remembered(v, oldTok) {
				t.Fatalf("token of the current key: %v, remembered %v", err, remembered(v, oldTok))
			}
			idp.serve(c.nextKid, next)
			// The API learns the new set the way it would in service: a token naming a kid it
			// lacks makes it fetch the set (for a key replaced under its kid, the periodic
			// refresh would; the test refreshes the storage directly).
			if c.nextKid != "key-1" {
				if _, err := v.verify("Bearer " + nextTok); err != nil {
					t.Fatalf("token of the new key: %v", err)
				}
			} else {
				refreshJWKS(t, v, idp)
			}
			if _, err := v.verify("Bearer " + oldTok); err == nil {
				t.Fatal("a remembered token of a key no longer in the set was accepted")
			}
			if _, err := v.verify("Bearer " + nextTok); err != nil {
				t.Errorf("token of the new key after the rotation: %v", err)
			}
		})
	}
}

// refreshJWKS makes v's key set what idp serves now, as the periodic refresh would.
func refreshJWKS(t *testing.T, v *verifier, idp *rotatingJWKS) {
	t.Helper()
	fresh, err := newVerifier(context.Background(), AuthConfig{JWKSURL: idp.url, Issuer: "x", Audience: "y"})
	if err != nil {
		t.Fatal(err)
	}
	v.keyfunc, v.keyHeld = fresh.keyfunc, fresh.keyHeld
}
