package api

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
)

// TestAccountJSON holds the hand-written account encoding to what encoding/json writes for the
// same value, including the strings that need escaping.
func TestAccountJSON(t *testing.T) {
	at := time.Date(2026, 11, 25, 17, 56, 57, 270028000, time.UTC)
	nick := func(s string) *string { return &s }
	base := Account{AccountID: "8d12f32f-4903-4491-b812-d27e7469d7a3", CustomerID: "aaeb8d98-b148-4a64-894b-28831753a59b",
		AccountType: "CHECKING", Currency: "USD", Balance: "1000000.00", Status: "ACTIVE", CreatedAt: at, UpdatedAt: at}
	cases := []struct {
		name   string
		change func(a *Account)
	}{
		{"no nickname", func(*Account) {}},
		{"plain nickname", func(a *Account) { a.Nickname = nick("rainy day") }},
		{"empty nickname", func(a *Account) { a.Nickname = nick("") }},
		{"quotes and backslash", func(a *Account) { a.Nickname = nick(`say "hi" \ bye`) }},
		{"html characters", func(a *Account) { a.Nickname = nick("<b>&amp;</b>") }},
		{"control characters", func(a *Account) { a.Nickname = nick("a\nb\tc\rd\be\ff\x00g\x1fh\x7f") }},
		{"unicode", func(a *Account) { a.Nickname = nick("épargne 貯金 🐷") }},
		{"line separators", func(a *Account) { a.Nickname = nick("a\u2028b\u2029c") }},
		{"invalid utf-8", func(a *Account) { a.Nickname = nick("a\xffb\xc3") }},
		{"whole seconds", func(a *Account) { a.CreatedAt = at.Truncate(time.Second) }},
		{"odd currency", func(a *Account) { a.Currency = `U"D` }},
	}
	if _, ok := any(base).(jsonAppender); !ok {
		t.Fatal("Account does not write its own JSON: the GET /accounts/{id} shortcut is gone")
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := base
			tc.change(&a)
			var want, got bytes.Buffer
			if err := huma.DefaultJSONFormat.Marshal(&want, a); err != nil {
				t.Fatal(err)
			}
			if err := jsonFormat.Marshal(&got, a); err != nil {
				t.Fatal(err)
			}
			// encoding/json before Go 1.27 wrote an invalid byte as the escape \ufffd, since then as
			// the replacement character itself: one JSON string either way.
			wantS := strings.ReplaceAll(want.String(), `\ufffd`, "\ufffd")
			if got.String() != wantS {
				t.Errorf("hand-written account JSON differs from encoding/json:\n got %s\nwant %s", got.String(), wantS)
			}
		})
	}
}
