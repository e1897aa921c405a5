package capture

import "testing"

func TestValueForms(t *testing.T) {
	tests := []struct {
		name   string
		oid    uint32
		typmod int32
		text   string
		want   string
	}{
		{"money stays the exact decimal string", oidNumeric, 18<<16 | 2 + 4, "12345678901234.99", `"12345678901234.99"`},
		{"timestamptz pads to 6 digits", oidTimestamptz, -1, "2024-01-01 10:00:00.5+00", `"2024-01-01T10:00:00.500000Z"`},
		{"timestamptz without fraction", oidTimestamptz, -1, "2024-02-29 23:59:59+00", `"2024-02-29T23:59:59.000000Z"`},
		{"timestamptz in another zone is converted to UTC", oidTimestamptz, -1, "2024-06-30 23:59:59.123+02", `"2024-06-30T21:59:59.123000Z"`},
		{"timestamptz(3)", oidTimestamptz, 3, "2024-06-30 21:59:59.12+00", `"2024-06-30T21:59:59.120Z"`},
		{"bigint is a number", oidInt8, -1, "9007199254740993", `9007199254740993`},
		{"bool", oidBool, -1, "t", `true`},
		{"date is days since epoch", oidDate, -1, "1970-01-11", `10`},
		{"bytea is base64", oidBytea, -1, `\x0102ff`, `"AQL/"`},
		{"text escapes like Jackson", 25, -1, "a\"b\\c\td\x01é<>", `"a\"b\\c\td\u0001é<>"`},
		{"enum is its label", 99999, -1, "CHECKING", `"CHECKING"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := encoderFor(tc.oid, tc.typmod)(nil, []byte(tc.text))
			if err != nil {
				t.Fatalf("encode %q: %v", tc.text, err)
			}
			if string(got) != tc.want {
				t.Errorf("encode %q = %s, want %s", tc.text, got, tc.want)
			}
		})
	}
}
