package s3local

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
)

// An object whose metadata a crash never wrote (kill -9 between the object's rename and its
// metadata: its PUT was never acknowledged) is dropped at start, and the bucket lists again;
// kept, it made every listing of its prefix fail with InternalError for good, so the loader's
// catch-up never listed bronze again after the restart (66-lost-lake.sh).
func TestObjectACrashLeftWithoutMetadataIsDropped(t *testing.T) {
	root := filepath.Join(t.TempDir(), "s3")
	open := func() *s3afero.MultiBucketBackend {
		_, files := openBackend(t, root)
		return files
	}
	files := open()
	if err := files.CreateBucket("lake"); err != nil {
		t.Fatal(err)
	}
	keys := []string{"bronze/transactions/dt=2026-12-07/fin.public.transactions-0-10-20-ab.parquet", "_manifest/capture/fin.json", "top.json"}
	for _, k := range keys {
		if _, err := files.PutObject("lake", k, nil, strings.NewReader("data of "+k), int64(len("data of "+k)), nil); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	// The crash: the first object is in place, its metadata never written.
	if err := os.Remove(filepath.Join(root, "metadata", "lake", metaName(keys[0]))); err != nil {
		t.Fatalf("the metadata is not where metaName says (s3afero changed its layout?): %v", err)
	}
	if _, err := open().ListBucket("lake", nil, gofakes3.ListBucketPage{}); err == nil {
		t.Fatal("the bucket lists with an object without metadata: the crash's state is not reproduced (or s3afero no longer fails on it)")
	}

	dropped, err := dropUnstored(root)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dropped, []string{"lake/" + keys[0]}) {
		t.Fatalf("dropped %v, want only lake/%s", dropped, keys[0])
	}
	list, err := open().ListBucket("lake", nil, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatalf("list after the start: %v", err)
	}
	var got []string
	for _, c := range list.Contents {
		got = append(got, c.Key)
	}
	slices.Sort(got)
	if want := []string{keys[1], keys[2]}; !slices.Equal(got, want) {
		t.Errorf("listed %v, want %v", got, want)
	}
}
