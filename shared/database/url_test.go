package database

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
)

type secrets map[string]string

func (s secrets) String(_ context.Context, id string) (string, error) {
	if v, ok := s[id]; ok {
		return v, nil
	}
	return "", errors.New("ResourceNotFoundException: " + id)
}

func TestURLFrom(t *testing.T) {
	sm := secrets{
		"arn:json": `{"url":"postgres://app@db.internal:5432/fin","username":"app"}`,
		"arn:bare": "postgres://bare@db.internal/fin",
		"arn:junk": `{"user":"x"}`,
	}
	cases := []struct {
		name, env, arn, want, errHas string
	}{
		{"DATABASE_URL wins", "postgres://env@host/fin", "arn:json", "postgres://env@host/fin", ""},
		{"json secret", "", "arn:json", "postgres://app@db.internal:5432/fin", ""},
		{"bare URL secret", "", "arn:bare", "postgres://bare@db.internal/fin", ""},
		{"secret without url", "", "arn:junk", "", "neither"},
		{"missing secret", "", "arn:none", "", "ResourceNotFoundException"},
		{"nothing configured", "", "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := settings.ForFunction(settings.API, settings.Values(map[string]string{"DATABASE_URL": tc.env, "DATABASE_SECRET_ARN": tc.arn}))
			got, err := URLFrom(context.Background(), env, sm)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("got %q, %v; want an error mentioning %q", got, err, tc.errHas)
				}
				return
			}
			if err != nil || got != tc.want || env.Err() != nil {
				t.Fatalf("got %q, %v (settings: %v); want %q", got, err, env.Err(), tc.want)
			}
		})
	}
}
