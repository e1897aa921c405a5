package api

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestJWKS verifies RS256 tokens against keys served at a JWKS URL, as with a real identity
// provider, and refuses the classic forgeries.
func TestJWKS(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
		"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
	}}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwks)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := newVerifier(ctx, AuthConfig{JWKSURL: "http://" + ln.Addr().String() + "/jwks.json",
		Issuer: "https://issuer.example", Audience: "fin-api"})
	if err != nil {
		t.Fatalf("verifier with JWKS: %v", err)
	}
	claims := func() jwt.MapClaims {
		return jwt.MapClaims{"sub": "client-1", "scope": "bank:read", "iss": "https://issuer.example",
			"aud": "fin-api", "exp": time.Now().Add(time.Hour).Unix()}
	}
	sign := func(m jwt.SigningMethod, k any, kid string, c jwt.MapClaims) string {
		t.Helper()
		tok := jwt.NewWithClaims(m, c)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := sign(jwt.SigningMethodRS256, key, "k1", claims())
	p, err := v.verify("Bearer " + good)
	if err != nil || p.Subject != "client-1" || !p.Scopes[ScopeRead] {
		t.Fatalf("a valid RS256 token verified as %+v, %v", p, err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	wrongIss, wrongAud := claims(), claims()
	wrongIss["iss"] = "https://elsewhere.example"
	wrongAud["aud"] = "another-api"
	bad := map[string]string{
		"signed by another key":           sign(jwt.SigningMethodRS256, stranger, "k1", claims()),
		"HS256 keyed with the public key": sign(jwt.SigningMethodHS256, pub, "k1", claims()),
		"unknown key id":                  sign(jwt.SigningMethodRS256, key, "k2", claims()),
		"another issuer":                  sign(jwt.SigningMethodRS256, key, "k1", wrongIss),
		"another audience":                sign(jwt.SigningMethodRS256, key, "k1", wrongAud),
	}
	for name, tok := range bad {
		if p, err := v.verify("Bearer " + tok); err == nil {
			t.Errorf("%s: accepted as %+v", name, p)
		}
	}
}
