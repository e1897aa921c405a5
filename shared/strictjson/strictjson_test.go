package strictjson

import (
	"strings"
	"testing"
)

func TestUnmarshal(t *testing.T) {
	type target struct {
		Name string `json:"name"`
		N    int    `json:"n"`
	}
	tests := []struct {
		in      string
		want    target
		wantErr string
	}{
		{in: `{"name":"a","n":2}`, want: target{Name: "a", N: 2}},
		{in: " {\"name\":\"a\"}\n", want: target{Name: "a"}},
		{in: `{}`, want: target{}},
		{in: `{"name":"a","extra":1}`, wantErr: `unknown field "extra"`},
		{in: `{"name":"a"}{"name":"b"}`, wantErr: "data after the JSON value"},
		{in: `{"name":"a"} x`, wantErr: "data after the JSON value"},
		{in: `{"n":"two"}`, wantErr: "cannot unmarshal string"},
		{in: ``, wantErr: "EOF"},
		{in: `{"name":`, wantErr: "unexpected EOF"},
	}
	for _, tt := range tests {
		var got target
		err := Unmarshal([]byte(tt.in), &got)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Unmarshal(%q) = %v, want an error containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Unmarshal(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}
