// Package generator makes synthetic banking activity: a bulk initial load through COPY, and a
// continuous stream of customer, account and ledger changes posted through the bank package.
package generator

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"go.yaml.in/yaml/v3"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
	"github.com/fin-orchestrator/fin-orchestrator/shared/money"
)

// Config is config.yaml. Weights are relative (they need not sum to 100).
type Config struct {
	// Seed makes every run with the same configuration produce the same data.
	Seed int64 `yaml:"seed"`
	// Customers, Accounts and Transactions are what `fin generate --once` inserts, exactly.
	Customers    int `yaml:"customers"`
	Accounts     int `yaml:"accounts"`
	Transactions int `yaml:"transactions"`
	// History is the time window the bulk load spreads its rows over.
	History History `yaml:"history"`

	AccountTypes     map[string]float64 `yaml:"account_types"`
	Currencies       map[string]float64 `yaml:"currencies"`
	TransactionTypes map[string]float64 `yaml:"transaction_types"`
	// Amounts per transaction type: log-normal around a median, so most are small and a few large.
	Amounts map[string]Amount `yaml:"amounts"`

	Continuous Continuous `yaml:"continuous"`
}

// History is the window of the bulk load's timestamps.
type History struct {
	Start time.Time `yaml:"start"`
	Days  int       `yaml:"days"`
}

// Amount is a log-normal distribution of amounts: median, spread (sigma of the log), and a cap.
type Amount struct {
	Median string  `yaml:"median"`
	Spread float64 `yaml:"spread"`
	Max    string  `yaml:"max"`

	medianCents int64
	maxCents    int64
}

// Continuous drives `fin generate` without --once.
type Continuous struct {
	// Rate is operations per second.
	Rate float64 `yaml:"rate"`
	// Writers is how many operations may be under way at once, each on a connection of its own,
	// as a bank's clients are many: one writer's rate is bounded by its round trips (begin, the
	// reads, the locked writes, commit: 5-40 ms an operation on a loaded machine), so it reached
	// about 70 operations a second when 200 were asked.
	Writers int `yaml:"writers"`
	// Actions weighs what each operation does.
	Actions map[string]float64 `yaml:"actions"`
	// ProspectShare is the share of new customers who open no account (and may later be deleted).
	ProspectShare float64 `yaml:"prospect_share"`
}

// Actions of continuous mode.
const (
	ActTransaction    = "transaction"
	ActNewCustomer    = "new_customer"
	ActOpenAccount    = "open_account"
	ActUpdateCustomer = "update_customer"
	ActCloseAccount   = "close_account"
	ActReopenAccount  = "reopen_account"
	ActRemoveCustomer = "remove_customer"
	ActReverse        = "reverse"
)

var allActions = []string{ActTransaction, ActNewCustomer, ActOpenAccount, ActUpdateCustomer,
	ActCloseAccount, ActReopenAccount, ActRemoveCustomer, ActReverse}

// Default is the configuration used when no config.yaml is given.
func Default() Config {
	return Config{
		Seed: 42, Customers: 1000, Accounts: 1500, Transactions: 20000,
		History:          History{Start: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), Days: 30},
		AccountTypes:     map[string]float64{"CHECKING": 60, "SAVINGS": 40},
		Currencies:       map[string]float64{"USD": 80, "EUR": 15, "GBP": 5},
		TransactionTypes: map[string]float64{"DEPOSIT": 40, "WITHDRAWAL": 35, "TRANSFER": 25},
		Amounts: map[string]Amount{
			"DEPOSIT":    {Median: "250.00", Spread: 1.0, Max: "25000.00"},
			"WITHDRAWAL": {Median: "80.00", Spread: 0.9, Max: "5000.00"},
			"TRANSFER":   {Median: "150.00", Spread: 1.1, Max: "10000.00"},
		},
		Continuous: Continuous{Rate: 5, Writers: 16, ProspectShare: 0.3, Actions: map[string]float64{
			ActTransaction: 80, ActNewCustomer: 4, ActOpenAccount: 2, ActUpdateCustomer: 6,
			ActCloseAccount: 2, ActReopenAccount: 1, ActRemoveCustomer: 2, ActReverse: 3,
		}},
	}
}

// Load reads a configuration file over the defaults. Unknown fields are refused, and the result
// is validated before anything is written anywhere.
func Load(path string) (Config, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read generator config: %w", err)
	}
	return Parse(body)
}

// Parse reads configuration YAML over the defaults and validates it.
func Parse(body []byte) (Config, error) {
	cfg := Default()
	dec := yaml.NewDecoder(bytes.NewReader(body))
	dec.KnownFields(true)
	// Maps given in the file replace the defaults' maps whole, rather than merging into them.
	cfg.AccountTypes, cfg.Currencies, cfg.TransactionTypes, cfg.Continuous.Actions = nil, nil, nil, nil
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) { // empty file: all defaults
		return Config{}, fmt.Errorf("generator config: %s", nameFields(body, err))
	}
	def := Default()
	if cfg.AccountTypes == nil {
		cfg.AccountTypes = def.AccountTypes
	}
	if cfg.Currencies == nil {
		cfg.Currencies = def.Currencies
	}
	if cfg.TransactionTypes == nil {
		cfg.TransactionTypes = def.TransactionTypes
	}
	if cfg.Continuous.Actions == nil {
		cfg.Continuous.Actions = def.Continuous.Actions
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// nameFields adds the field's path to each line of a YAML error that only gives a line number
// ("line 3: cannot unmarshal !!str `many` into int" becomes "customers (line 3): ...").
func nameFields(body []byte, err error) string {
	var root yaml.Node
	if yaml.Unmarshal(body, &root) != nil {
		return err.Error()
	}
	paths := map[int]string{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		for _, c := range n.Content {
			if n.Kind == yaml.MappingNode {
				break
			}
			walk(c, prefix)
		}
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			path := prefix + n.Content[i].Value
			paths[n.Content[i+1].Line] = path
			walk(n.Content[i+1], path+".")
		}
	}
	walk(&root, "")
	msg := err.Error()
	for line, path := range paths {
		msg = strings.ReplaceAll(msg, fmt.Sprintf("line %d: ", line), fmt.Sprintf("%s (line %d): ", path, line))
	}
	return msg
}

// Validate checks every field, naming the first one that is wrong.
func (c *Config) Validate() error {
	if c.Customers < 0 {
		return fieldErr("customers", "must not be negative, got %d", c.Customers)
	}
	if c.Accounts < 0 {
		return fieldErr("accounts", "must not be negative, got %d", c.Accounts)
	}
	if c.Transactions < 0 {
		return fieldErr("transactions", "must not be negative, got %d", c.Transactions)
	}
	if c.Accounts > 0 && c.Customers == 0 {
		return fieldErr("accounts", "needs at least one customer to hold them")
	}
	if c.Transactions > 0 && c.Accounts == 0 {
		return fieldErr("transactions", "needs at least one account to post to")
	}
	if c.History.Days <= 0 {
		return fieldErr("history.days", "must be at least 1, got %d", c.History.Days)
	}
	if c.History.Start.IsZero() {
		return fieldErr("history.start", "must be a time such as 2026-10-01T00:00:00Z")
	}
	if err := checkWeights("account_types", c.AccountTypes, func(k string) bool { return bank.AccountType(k).Valid() }); err != nil {
		return err
	}
	if err := checkWeights("currencies", c.Currencies, func(k string) bool { return money.CheckCurrency(k) == nil }); err != nil {
		return err
	}
	if err := checkWeights("transaction_types", c.TransactionTypes, func(k string) bool { return bank.TransactionType(k).Valid() }); err != nil {
		return err
	}
	for _, t := range []string{"DEPOSIT", "WITHDRAWAL", "TRANSFER"} {
		a, ok := c.Amounts[t]
		if !ok {
			a = Default().Amounts[t]
		}
		if err := a.prepare("amounts." + t); err != nil {
			return err
		}
		if c.Amounts == nil {
			c.Amounts = map[string]Amount{}
		}
		c.Amounts[t] = a
	}
	for k := range c.Amounts {
		if !bank.TransactionType(k).Valid() {
			return fieldErr("amounts."+k, "is not a transaction type (DEPOSIT, WITHDRAWAL, TRANSFER)")
		}
	}
	if c.Continuous.Rate <= 0 || c.Continuous.Rate > 10000 {
		return fieldErr("continuous.rate", "must be above 0 and at most 10000 operations per second, got %v", c.Continuous.Rate)
	}
	if c.Continuous.Writers < 1 || c.Continuous.Writers > 64 {
		return fieldErr("continuous.writers", "must be between 1 and 64, got %d", c.Continuous.Writers)
	}
	if c.Continuous.ProspectShare < 0 || c.Continuous.ProspectShare > 1 {
		return fieldErr("continuous.prospect_share", "must be between 0 and 1, got %v", c.Continuous.ProspectShare)
	}
	known := map[string]bool{}
	for _, a := range allActions {
		known[a] = true
	}
	return checkWeights("continuous.actions", c.Continuous.Actions, func(k string) bool { return known[k] })
}

func (a *Amount) prepare(field string) error {
	median, err := money.ParseAmount(a.Median)
	if err != nil {
		return fieldErr(field+".median", "%q %v", a.Median, err)
	}
	max, err := money.ParseAmount(a.Max)
	if err != nil {
		return fieldErr(field+".max", "%q %v", a.Max, err)
	}
	if max.LessThan(median) {
		return fieldErr(field+".max", "%s is below the median %s", a.Max, a.Median)
	}
	if a.Spread < 0 || a.Spread > 5 {
		return fieldErr(field+".spread", "must be between 0 and 5, got %v", a.Spread)
	}
	a.medianCents = cents(median)
	a.maxCents = cents(max)
	return nil
}

func cents(d decimal.Decimal) int64 { return d.Shift(money.Scale).IntPart() }

func checkWeights(field string, w map[string]float64, valid func(string) bool) error {
	if len(w) == 0 {
		return fieldErr(field, "needs at least one entry")
	}
	total := 0.0
	for _, k := range sortedKeys(w) {
		if !valid(k) {
			return fieldErr(field+"."+k, "is not a known value")
		}
		if w[k] < 0 {
			return fieldErr(field+"."+k, "weight must not be negative, got %v", w[k])
		}
		total += w[k]
	}
	if total <= 0 {
		return fieldErr(field, "weights must not all be zero")
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// FieldError names the configuration field that is wrong.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	return "generator config: " + e.Field + " " + strings.TrimSpace(e.Reason)
}

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
