package money

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/shopspring/decimal"
)

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr error
	}{
		{"12.3", "12.30", nil},
		{"0.01", "0.01", nil},
		{"9999999999999999.99", "9999999999999999.99", nil},
		{"100", "100.00", nil},
		{"0", "", ErrNotPositive},
		{"-5.00", "", ErrNotPositive},
		{"1.005", "", ErrTooPrecise},
		{"10000000000000000.00", "", ErrTooLarge},
		{"1e3", "1000.00", nil},
		{"abc", "", ErrNotAnAmount},
		{"", "", ErrNotAnAmount},
		{"12,30", "", ErrNotAnAmount},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseAmount(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseAmount(%q) error = %v, want %v", tt.in, err, tt.wantErr)
			}
			if err == nil && Format(got) != tt.want {
				t.Fatalf("ParseAmount(%q) = %s, want %s", tt.in, Format(got), tt.want)
			}
		})
	}
}

func TestFromCentsIsExact(t *testing.T) {
	// 0.1 + 0.2 is the classic float trap; in cents it is exact.
	sum := FromCents(10).Add(FromCents(20))
	if Format(sum) != "0.30" {
		t.Fatalf("0.10 + 0.20 = %s", Format(sum))
	}
}

func TestCheckCurrency(t *testing.T) {
	for _, c := range []string{"USD", "EUR", "GBP"} {
		if err := CheckCurrency(c); err != nil {
			t.Errorf("CheckCurrency(%s) = %v", c, err)
		}
	}
	for _, c := range []string{"usd", "JPY", "KWD", "XXX", ""} {
		if err := CheckCurrency(c); !errors.Is(err, ErrUnknownCurrency) {
			t.Errorf("CheckCurrency(%q) = %v, want ErrUnknownCurrency", c, err)
		}
	}
}

// TestFormatAsStringFixed holds Format's int64 path to StringFixed's text, and says which
// values take it: every NUMERIC(18,2) does, more places or more digits do not.
func TestFormatAsStringFixed(t *testing.T) {
	tests := []struct {
		in   decimal.Decimal
		fast bool
	}{
		{decimal.New(0, -2), true},
		{decimal.New(0, 0), true},
		{decimal.New(5, -2), true},
		{decimal.New(-5, -2), true},
		{decimal.New(-1230, -2), true},
		{decimal.New(123, -1), true},
		{decimal.New(7, 0), true},
		{decimal.New(-7, 0), true},
		{decimal.RequireFromString("9999999999999999.99"), true},
		{decimal.RequireFromString("-9999999999999999.99"), true},
		{decimal.RequireFromString("99999999999999999.9"), false}, // 10^18 cents and more: StringFixed
		{decimal.RequireFromString("1.005"), false},               // three places: StringFixed rounds
		{decimal.RequireFromString("-0.125"), false},
		{decimal.RequireFromString("1e3"), false},
		{decimal.RequireFromString("123456789012345678901234.50"), false},
	}
	for _, tt := range tests {
		want := tt.in.StringFixed(Scale)
		if got := Format(tt.in); got != want {
			t.Errorf("Format(%s) = %q, StringFixed %q", tt.in, got, want)
		}
		if _, fast := appendCents(nil, tt.in); fast != tt.fast {
			t.Errorf("appendCents(%s) took the int64 path: %v, want %v", tt.in, fast, tt.fast)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		cents := r.Int64N(2e18) - 1e18
		exp := -int32(r.IntN(3))
		if exp == 0 {
			cents /= 100
		} else if exp == -1 {
			cents /= 10
		}
		d := decimal.New(cents, exp)
		if got, want := Format(d), d.StringFixed(Scale); got != want {
			t.Fatalf("Format(%s) = %q, StringFixed %q", d, got, want)
		}
	}
}
