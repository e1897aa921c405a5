package buildrequest

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		msg     Message
		wantErr string
	}{
		{"a load's tables", Message{Tables: []string{"accounts", "transactions"}}, ""},
		{"one model", Message{Model: "dim_accounts"}, ""},
		{"everything", Message{All: true}, ""},
		{"nothing", Message{}, "names no table, model or all"},
		{"two kinds", Message{Model: "dim_accounts", All: true}, "or more than one"},
		{"a selector in a table", Message{Tables: []string{"accounts+ tag:x"}}, `table "accounts+ tag:x" is not a table name`},
		{"a selector in a model", Message{Model: "dim_accounts+"}, `model "dim_accounts+" is not a model name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.msg.Check()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Check() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
