package money

import (
	"errors"
	"testing"
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
