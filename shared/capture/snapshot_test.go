package capture

import "testing"

func TestSnapshotVisibility(t *testing.T) {
	for _, tc := range []struct {
		snap string
		xid  uint32
		want bool
	}{
		{"100:105:", 99, true},          // committed before the snapshot's oldest running xid
		{"100:105:", 100, true},         // not running at the snapshot: finished before it
		{"100:105:100,103", 100, false}, // running when the chunk was read
		{"100:105:100,103", 103, false},
		{"100:105:100,103", 104, true},
		{"100:105:", 105, false},                       // began after the snapshot
		{"100:105:", 4000000000, true},                 // far in the past, modulo 2^32
		{"4294967290:4294967299:4294967295", 3, false}, // xmax past the wrap, epoch-extended
		{"4294967290:4294967299:4294967295", 4294967295, false},
		{"4294967290:4294967299:4294967295", 4294967294, true},
	} {
		s, err := parseSnapshot(tc.snap)
		if err != nil {
			t.Fatalf("parseSnapshot(%q): %v", tc.snap, err)
		}
		if got := s.visible(tc.xid); got != tc.want {
			t.Errorf("snapshot %s: visible(%d) = %v, want %v", tc.snap, tc.xid, got, tc.want)
		}
	}
	for _, bad := range []string{"", "1:2", "a:2:", "1:b:3"} {
		if _, err := parseSnapshot(bad); err == nil {
			t.Errorf("parseSnapshot(%q) accepted", bad)
		}
	}
}
