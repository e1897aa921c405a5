package main

import "testing"

func TestDefaultProcsLeavesHalfTheCoresToALocalDatabase(t *testing.T) {
	for _, tc := range []struct {
		host string
		cpus int
		want int
	}{
		{"127.0.0.1", 2, 1},
		{"127.0.0.1", 8, 4},
		{"::1", 4, 2},
		{"localhost", 1, 1},
		{"/var/run/postgresql", 16, 8},
		{"", 2, 1},
		{"db.internal.example", 8, 8},
		{"10.0.0.5", 2, 2},
	} {
		if got := defaultProcs(tc.host, tc.cpus); got != tc.want {
			t.Errorf("defaultProcs(%q, %d) = %d, want %d", tc.host, tc.cpus, got, tc.want)
		}
	}
}
