package main

import (
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// `fin token` mints a service token (bank:service added to its scopes) and, with -customer, a
// customer token: the configured claim names the customer and bank:service is absent.
func TestTokenKinds(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef-test"
	const customer = "0f3c9a4e-5b1d-4c8e-9a7f-2d6b8e1c4a90"
	cases := []struct {
		name, claimSetting string
		args               []string
		scope              string // want, space-separated
		claim              string // the customer claim's name; "" for a service token
	}{
		{"service by default", "", nil, "bank:read bank:write bank:service", ""},
		{"service, read only", "", []string{"-scopes", "bank:read"}, "bank:read bank:service", ""},
		{"service scope given once", "", []string{"-scopes", "bank:service,bank:read"}, "bank:service bank:read", ""},
		{"operator alone: no customer data", "", []string{"-scopes", "bank:operator"}, "bank:operator", ""},
		{"operator beside reads", "", []string{"-scopes", "bank:operator,bank:read"}, "bank:operator bank:read bank:service", ""},
		{"customer", "", []string{"-customer", customer}, "bank:read bank:write", "customer_id"},
		{"customer, claim configured", "custom:customer_id", []string{"-customer", customer, "-scopes", "bank:read"}, "bank:read", "custom:customer_id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("FIN_JWT_SECRET", secret)
			t.Setenv("FIN_JWKS_URL", "")
			t.Setenv("FIN_JWT_CUSTOMER_CLAIM", c.claimSetting)
			tok, err := mintToken(c.args)
			if err != nil {
				t.Fatalf("fin token %v: %v", c.args, err)
			}
			claims := jwt.MapClaims{}
			if _, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return []byte(secret), nil }); err != nil {
				t.Fatalf("the token does not verify: %v", err)
			}
			if claims["scope"] != c.scope {
				t.Errorf("scope %q, want %q", claims["scope"], c.scope)
			}
			for name, v := range claims {
				if strings.Contains(name, "customer") && name != c.claim {
					t.Errorf("claim %s = %v: want no customer claim but %q", name, v, c.claim)
				}
			}
			if c.claim != "" && claims[c.claim] != customer {
				t.Errorf("claim %s = %v, want %s", c.claim, claims[c.claim], customer)
			}
		})
	}
}
