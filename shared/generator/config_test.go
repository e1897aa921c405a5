package generator

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name, yaml, field string
	}{
		{"unknown field", "customerz: 10\n", "customerz"},
		{"unknown nested field", "continuous:\n  speed: 3\n", "speed"},
		{"negative customers", "customers: -1\n", "customers"},
		{"negative transactions", "transactions: -5\n", "transactions"},
		{"accounts without customers", "customers: 0\naccounts: 5\n", "accounts"},
		{"unknown currency", "currencies: {USD: 1, XYZ: 1}\n", "currencies.XYZ"},
		{"currency with 0 decimals", "currencies: {JPY: 1}\n", "currencies.JPY"},
		{"negative weight", "currencies: {USD: -1}\n", "currencies.USD"},
		{"all weights zero", "account_types: {CHECKING: 0}\n", "account_types"},
		{"unknown account type", "account_types: {BROKERAGE: 1}\n", "account_types.BROKERAGE"},
		{"unknown action", "continuous:\n  actions: {dance: 1}\n", "continuous.actions.dance"},
		{"zero rate", "continuous:\n  rate: 0\n", "continuous.rate"},
		{"no writer", "continuous:\n  writers: 0\n", "continuous.writers"},
		{"three-decimal median", "amounts:\n  DEPOSIT: {median: \"1.005\", spread: 1, max: \"10.00\"}\n", "amounts.DEPOSIT.median"},
		{"max below median", "amounts:\n  DEPOSIT: {median: \"100.00\", spread: 1, max: \"10.00\"}\n", "amounts.DEPOSIT.max"},
		{"history of no days", "history: {start: 2026-01-01T00:00:00Z, days: 0}\n", "history.days"},
		{"not yaml", "customers: [1\n", "generator config"},
		{"wrong type", "customers: many\n", "customers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse accepted %q", tt.yaml)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("error %q does not name %q", err, tt.field)
			}
		})
	}
}

func TestParseDefaultsAndOverrides(t *testing.T) {
	cfg, err := Parse([]byte(""))
	if err != nil {
		t.Fatalf("empty config: %v", err)
	}
	if cfg.Customers != Default().Customers || cfg.Amounts["DEPOSIT"].medianCents != 25000 {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	cfg, err = Parse([]byte("seed: 9\ncustomers: 3\ncurrencies: {EUR: 1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Seed != 9 || cfg.Customers != 3 || len(cfg.Currencies) != 1 {
		t.Fatalf("overrides not applied: %+v", cfg)
	}
	var fe *FieldError
	if _, err := Parse([]byte("customers: -2\n")); !errors.As(err, &fe) || fe.Field != "customers" {
		t.Fatalf("want a FieldError naming customers, got %v", err)
	}
}

func TestRepoConfigIsValid(t *testing.T) {
	if _, err := Load("../../config.yaml"); err != nil {
		t.Fatalf("the repository's config.yaml: %v", err)
	}
}
