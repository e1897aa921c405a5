package main

import "testing"

func TestLocalDatabaseProcsLeavesHalfToTheDatabase(t *testing.T) {
	for _, tc := range []struct {
		host  string
		procs int
		want  int
	}{
		{"127.0.0.1", 2, 1},
		{"127.0.0.1", 8, 4},
		{"::1", 4, 2},
		{"localhost", 1, 1},
		{"/var/run/postgresql", 16, 8},
		{"", 2, 1},
		{"db.internal.example", 8, 0},
		{"10.0.0.5", 2, 0},
	} {
		if got := localDatabaseProcs(tc.host, tc.procs); got != tc.want {
			t.Errorf("localDatabaseProcs(%q, %d) = %d, want %d", tc.host, tc.procs, got, tc.want)
		}
	}
}
