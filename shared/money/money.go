// Package money holds the rules for amounts and currencies: exact decimals with two places,
// never a float.
package money

import (
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/shopspring/decimal"
)

// Scale is the number of decimal places every amount carries (NUMERIC(18,2)).
const Scale = 2

// maxAmount is the largest value NUMERIC(18,2) holds.
var maxAmount = decimal.RequireFromString("9999999999999999.99")

// Errors returned by ParseAmount and CheckAmount.
var (
	ErrNotPositive     = errors.New("must be greater than zero")
	ErrTooPrecise      = errors.New("must have at most 2 decimal places")
	ErrTooLarge        = errors.New("must be at most 9999999999999999.99")
	ErrNotAnAmount     = errors.New("must be a decimal number such as \"12.30\"")
	ErrUnknownCurrency = errors.New("is not an ISO 4217 currency with 2 decimal places that this ledger accepts")
)

// ParseAmount reads a positive amount with at most two decimals from its decimal string.
func ParseAmount(s string) (decimal.Decimal, error) {
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, ErrNotAnAmount
	}
	return d, CheckAmount(d)
}

// CheckAmount reports whether d is a positive amount that fits the ledger exactly.
func CheckAmount(d decimal.Decimal) error {
	switch {
	case !d.IsPositive():
		return ErrNotPositive
	case !d.Equal(d.Truncate(Scale)):
		return ErrTooPrecise
	case d.GreaterThan(maxAmount):
		return ErrTooLarge
	}
	return nil
}

// Format renders d with exactly two decimals ("12.30"), the form used on every wire. Every
// account and transaction answered pays for it, so an amount that is a whole number of cents
// below 10^18 (every NUMERIC(18,2)) is written from its int64 coefficient; anything else
// (more places to round, a larger value) goes through StringFixed, as before. Both write the
// same text (TestFormatAsStringFixed).
func Format(d decimal.Decimal) string {
	var b [24]byte
	if out, ok := appendCents(b[:0], d); ok {
		return string(out)
	}
	return d.StringFixed(Scale)
}

// appendCents appends d with two decimals when d has at most two places and fewer than 19
// digits as cents, so that its cents fit an int64; ok is false otherwise.
func appendCents(b []byte, d decimal.Decimal) (out []byte, ok bool) {
	exp := d.Exponent()
	if exp > 0 || exp < -Scale || d.NumDigits()+int(Scale+exp) > 18 {
		return b, false
	}
	cents := d.CoefficientInt64()
	for i := int32(0); i < Scale+exp; i++ {
		cents *= 10
	}
	if cents < 0 {
		b = append(b, '-')
		cents = -cents
	}
	b = strconv.AppendInt(b, cents/100, 10)
	frac := cents % 100
	return append(b, '.', byte('0'+frac/10), byte('0'+frac%10)), true
}

// FromCents converts a whole number of minor units to an amount.
func FromCents(cents int64) decimal.Decimal { return decimal.New(cents, -Scale) }

// currencies are the ISO 4217 codes with a minor unit of 2 that the ledger accepts; the
// migration that creates the currencies table seeds the same list (a test keeps them equal).
var currencies = map[string]string{
	"AED": "UAE Dirham", "AUD": "Australian Dollar", "BGN": "Bulgarian Lev",
	"BRL": "Brazilian Real", "CAD": "Canadian Dollar", "CHF": "Swiss Franc",
	"CNY": "Yuan Renminbi", "CZK": "Czech Koruna", "DKK": "Danish Krone",
	"EUR": "Euro", "GBP": "Pound Sterling", "HKD": "Hong Kong Dollar",
	"HUF": "Forint", "ILS": "New Israeli Sheqel", "INR": "Indian Rupee",
	"MXN": "Mexican Peso", "MYR": "Malaysian Ringgit", "NOK": "Norwegian Krone",
	"NZD": "New Zealand Dollar", "PHP": "Philippine Peso", "PLN": "Zloty",
	"RON": "Romanian Leu", "SEK": "Swedish Krona", "SGD": "Singapore Dollar",
	"THB": "Baht", "TRY": "Turkish Lira", "USD": "US Dollar", "ZAR": "Rand",
}

// CheckCurrency reports whether code is a currency the ledger accepts.
func CheckCurrency(code string) error {
	if _, ok := currencies[code]; !ok {
		return fmt.Errorf("currency %q %w", code, ErrUnknownCurrency)
	}
	return nil
}

// Currencies returns the accepted currency codes, sorted.
func Currencies() []string {
	out := make([]string, 0, len(currencies))
	for c := range currencies {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}
