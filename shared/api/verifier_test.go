package api

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"
)

// The exported Verifier is the API's own check: the scope map grants the operator scope, and a
// token the API refuses (another audience) it refuses too.
func TestVerifierForOtherEndpoints(t *testing.T) {
	m, err := ParseScopeMap("fin-api/operator=" + ScopeOperator)
	if err != nil {
		t.Fatal(err)
	}
	c := AuthConfig{Secret: bytes.Repeat([]byte("s"), 32), Issuer: DevIssuer, Audience: DevAudience, ScopeMap: m}
	v, err := NewVerifier(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := c.IssueToken("ops", []string{"fin-api/operator"}, time.Hour)
	sub, scopes, err := v.Verify("Bearer " + tok)
	if err != nil || sub != "ops" || !slices.Contains(scopes, ScopeOperator) {
		t.Errorf("Verify = %s %v %v; want ops with %s granted by the scope map", sub, scopes, err, ScopeOperator)
	}
	other := c
	other.Audience = "another-api"
	tok, _ = other.IssueToken("ops", []string{ScopeOperator}, time.Hour)
	if _, _, err := v.Verify("Bearer " + tok); err == nil {
		t.Error("a token for another audience was accepted")
	}
	if _, _, err := v.Verify(""); err == nil {
		t.Error("no header was accepted")
	}
}
