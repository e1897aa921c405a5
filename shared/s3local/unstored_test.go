package s3local

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
)

// An object whose metadata a crash never wrote (kill -9 between the object's rename and its
// metadata: its PUT was never acknowledged) is dropped at start, and the bucket lists again;
// kept, it made every listing of its prefix fail with InternalError for good, so the loader's
// catch-up never listed bronze again after the restart (66-lost-lake.sh). The start looks only
// at the PUTs that were in progress (their markers), whatever the lake's size; a lake from
// before the markers is walked in full once.
func TestObjectACrashLeftWithoutMetadataIsDropped(t *testing.T) {
	const stored = 200 // objects stored whole before the crash
	tests := []struct {
		name        string
		before      bool // the lake is from before the markers: no pending directory
		wantChecked int
	}{
		{name: "the PUT in progress is marked", wantChecked: 1},
		{name: "a lake from before the markers", before: true, wantChecked: stored + 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "s3")
			open := func() (*atomicFs, *s3afero.MultiBucketBackend) { return openBackend(t, root) }
			fs, files := open()
			if _, _, err := dropUnstored(root); err != nil { // the first start
				t.Fatal(err)
			}
			if err := files.CreateBucket("lake"); err != nil {
				t.Fatal(err)
			}
			backend := &notifying{Backend: files, fs: fs, emit: func(events.S3Event) {}}
			put := func(k string) {
				t.Helper()
				if _, err := backend.PutObject("lake", k, nil, strings.NewReader("data of "+k), int64(len("data of "+k)), nil); err != nil {
					t.Fatalf("put %s: %v", k, err)
				}
			}
			for i := range stored {
				put(fmt.Sprintf("bronze/accounts/dt=2026-12-07/fin.public.accounts-0-%d-%d-ab.parquet", i, i+1))
			}
			keys := []string{"bronze/transactions/dt=2026-12-07/fin.public.transactions-0-10-20-ab.parquet", "_manifest/capture/fin.json", "top.json"}
			for _, k := range keys[1:] {
				put(k)
			}
			// The crash: the first object's PUT began (marked) and put it in place, its metadata
			// never written.
			if _, _, err := putStarted(root, "lake", keys[0]); err != nil {
				t.Fatal(err)
			}
			if _, err := files.PutObject("lake", keys[0], nil, strings.NewReader("x"), 1, nil); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(root, "metadata", "lake", metaName(keys[0]))); err != nil {
				t.Fatalf("the metadata is not where metaName says (s3afero changed its layout?): %v", err)
			}
			if tt.before {
				if err := os.RemoveAll(pendingDir(root)); err != nil {
					t.Fatal(err)
				}
			}
			_, files = open()
			if _, err := files.ListBucket("lake", nil, gofakes3.ListBucketPage{}); err == nil {
				t.Fatal("the bucket lists with an object without metadata: the crash's state is not reproduced (or s3afero no longer fails on it)")
			}

			dropped, checked, err := dropUnstored(root)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(dropped, []string{"lake/" + keys[0]}) {
				t.Fatalf("dropped %v, want only lake/%s", dropped, keys[0])
			}
			if checked != tt.wantChecked {
				t.Errorf("the start looked at %d objects, want %d (of %d in the lake)", checked, tt.wantChecked, stored+3)
			}
			_, files = open()
			list, err := files.ListBucket("lake", nil, gofakes3.ListBucketPage{})
			if err != nil {
				t.Fatalf("list after the start: %v", err)
			}
			var got []string
			for _, c := range list.Contents {
				if !strings.HasPrefix(c.Key, "bronze/accounts/") {
					got = append(got, c.Key)
				}
			}
			slices.Sort(got)
			if want := []string{keys[1], keys[2]}; !slices.Equal(got, want) || len(list.Contents) != stored+2 {
				t.Errorf("listed %v and %d others, want %v and %d", got, len(list.Contents)-len(got), want, stored)
			}
			// The next start has nothing to look at: the markers were crossed off.
			if _, checked, err := dropUnstored(root); err != nil || checked != 0 {
				t.Errorf("the next start looked at %d objects (%v), want 0", checked, err)
			}
		})
	}
}
