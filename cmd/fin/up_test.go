package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestKafkaRetentionFromEnvironment: fin up's broker retention, by time and by bytes, comes from
// FIN_KAFKA_RETENTION and FIN_KAFKA_RETENTION_BYTES with their defaults, and a bad value is a
// usage error naming the variable rather than an unbounded broker.
func TestKafkaRetentionFromEnvironment(t *testing.T) {
	tests := []struct {
		name, retention, bytes string
		wantD                  time.Duration
		wantB                  int64
		wantErr                string
	}{
		{"defaults", "", "", time.Minute, 1 << 20, ""},
		{"both set", "30s", "1048576", 30 * time.Second, 1 << 20, ""},
		{"no byte bound", "1m", "0", time.Minute, 0, ""},
		{"negative bytes", "1m", "-1", 0, 0, "FIN_KAFKA_RETENTION_BYTES"},
		{"bytes with a unit", "1m", "8MiB", 0, 0, "FIN_KAFKA_RETENTION_BYTES"},
		{"bad duration", "soon", "", 0, 0, "FIN_KAFKA_RETENTION="},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("FIN_KAFKA_RETENTION", tc.retention)
			t.Setenv("FIN_KAFKA_RETENTION_BYTES", tc.bytes)
			d, b, err := kafkaRetention()
			if tc.wantErr != "" {
				if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want a usage error naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || d != tc.wantD || b != tc.wantB {
				t.Fatalf("got %v, %d, %v; want %v, %d", d, b, err, tc.wantD, tc.wantB)
			}
		})
	}
}

// TestWarehouseThreadsFromEnvironment: FIN_WAREHOUSE_THREADS sets the stack's DuckDB threads; unset
// or 0 leaves DuckDB's default, and anything but a count is a usage error naming the variable.
func TestWarehouseThreadsFromEnvironment(t *testing.T) {
	tests := []struct {
		value   string
		want    int
		wantErr bool
	}{
		{"", 0, false},
		{"1", 1, false},
		{"0", 0, false},
		{"-1", 0, true},
		{"two", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			t.Setenv("FIN_WAREHOUSE_THREADS", tc.value)
			n, err := warehouseThreads()
			if tc.wantErr {
				if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "FIN_WAREHOUSE_THREADS") {
					t.Fatalf("got %d, %v; want a usage error naming FIN_WAREHOUSE_THREADS", n, err)
				}
				return
			}
			if err != nil || n != tc.want {
				t.Fatalf("got %d, %v; want %d", n, err, tc.want)
			}
		})
	}
}
