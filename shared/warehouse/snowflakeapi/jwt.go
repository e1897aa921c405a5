package snowflakeapi

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"
)

// tokenLifetime is how long a key-pair JWT is valid (Snowflake accepts at most an hour); a token
// is renewed once half of it has passed, so one in flight never expires mid-request.
const tokenLifetime = 10 * time.Minute

// signer makes the key-pair JWTs the SQL API accepts: RS256, iss = <ACCOUNT>.<USER>.SHA256:<public
// key fingerprint>, sub = <ACCOUNT>.<USER>. It caches the current token.
type signer struct {
	key       *rsa.PrivateKey
	qualified string // <ACCOUNT>.<USER>
	issuer    string
	now       func() time.Time

	mu      sync.Mutex
	token   string
	renewAt time.Time
}

func newSigner(account, user string, key *rsa.PrivateKey, now func() time.Time) (*signer, error) {
	fp, err := Fingerprint(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	q := jwtAccount(account) + "." + strings.ToUpper(user)
	return &signer{key: key, qualified: q, issuer: q + "." + fp, now: now}, nil
}

// Fingerprint is the public key's fingerprint as Snowflake shows it in DESCRIBE USER
// (RSA_PUBLIC_KEY_FP): "SHA256:" and the base64 SHA-256 of the key's DER (SubjectPublicKeyInfo).
func Fingerprint(pub *rsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("snowflake sql api: public key fingerprint: %w", err)
	}
	sum := sha256.Sum256(der)
	return "SHA256:" + base64.StdEncoding.EncodeToString(sum[:]), nil
}

// jwtAccount is the account as the token names it: upper case, without the region or cloud
// suffix an account locator may carry (xy12345.us-east-2.aws -> XY12345).
func jwtAccount(account string) string {
	a, _, _ := strings.Cut(account, ".")
	return strings.ToUpper(a)
}

// Token returns a valid token, signing a new one when the cached one is half spent.
func (s *signer) Token() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.token != "" && now.Before(s.renewAt) {
		return s.token, nil
	}
	header := map[string]string{"alg": "RS256", "typ": "JWT"}
	claims := map[string]any{"iss": s.issuer, "sub": s.qualified, "iat": now.Unix(), "exp": now.Add(tokenLifetime).Unix()}
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("snowflake sql api: sign the key-pair token: %w", err)
	}
	s.token, s.renewAt = signing+"."+enc.EncodeToString(sig), now.Add(tokenLifetime/2)
	return s.token, nil
}
