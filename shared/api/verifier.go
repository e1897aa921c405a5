package api

import (
	"context"
	"maps"
	"slices"
)

// Verifier checks bearer tokens by exactly the API's rules (issuer, audience, JWKS or the local
// secret, the scope map), for the stack's other endpoints that act on an operator's behalf.
type Verifier struct{ v *verifier }

// NewVerifier is the API's token check for c; ctx bounds the JWKS refresh.
func NewVerifier(ctx context.Context, c AuthConfig) (*Verifier, error) {
	v, err := newVerifier(ctx, c)
	if err != nil {
		return nil, err
	}
	return &Verifier{v}, nil
}

// Verify reads an Authorization header ("Bearer <token>"): the token's subject and its scopes,
// the scope map's grants included, or why the token is refused.
func (v *Verifier) Verify(header string) (subject string, scopes []string, err error) {
	p, err := v.v.verify(header)
	if err != nil {
		return "", nil, err
	}
	return p.Subject, slices.Sorted(maps.Keys(p.Scopes)), nil
}
