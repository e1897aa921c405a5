package schedule

import (
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 7, 30, 0, time.UTC) // a Wednesday
	tests := []struct {
		expr string
		want time.Time
	}{
		{"rate(1 minute)", at.Add(time.Minute)},
		{"rate(15 minutes)", at.Add(15 * time.Minute)},
		{"rate(2 hours)", at.Add(2 * time.Hour)},
		{"cron(0/15 * * * ? *)", time.Date(2026, 11, 25, 10, 15, 0, 0, time.UTC)},
		{"cron(0 12 * * ? *)", time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)},
		{"cron(30 2 * * ? *)", time.Date(2026, 11, 26, 2, 30, 0, 0, time.UTC)},
		{"cron(0 9 ? * MON-FRI *)", time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)},
		{"cron(0 9 ? * SAT,SUN *)", time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)},
		{"cron(0 0 1 JAN ? *)", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"cron(5 4 29 2 ? 2028)", time.Date(2028, 2, 29, 4, 5, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			s, err := Parse(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Next(at); !got.Equal(tt.want) {
				t.Fatalf("Next(%s) = %s, want %s", at, got, tt.want)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	for _, expr := range []string{
		"rate(0 minutes)", "rate(5 minute)", "rate(1 minutes)", "rate(5 weeks)", "rate(five minutes)",
		"cron(0 12 * * *)", "cron(0 12 * * * *)", "cron(0 12 ? * ? *)", "cron(61 * * * ? *)",
		"cron(0 12 L * ? *)", "every 5 minutes", "",
	} {
		if _, err := Parse(expr); err == nil {
			t.Errorf("Parse(%q) accepted", expr)
		}
	}
}
