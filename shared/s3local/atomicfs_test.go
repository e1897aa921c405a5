package s3local

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
)

// stalling gives half of body, then waits for release and gives the rest (or fails with what
// release sends).
type stalling struct {
	body    []byte
	off     int
	release chan error
}

func (s *stalling) Read(p []byte) (int, error) {
	half := len(s.body) / 2
	if s.off == half && s.release != nil {
		if err := <-s.release; err != nil {
			return 0, err
		}
		s.release = nil
	}
	end := len(s.body)
	if s.release != nil {
		end = half
	}
	n := copy(p, s.body[s.off:end])
	s.off += n
	if s.off == len(s.body) {
		return n, io.EOF
	}
	return n, nil
}

// openBackend serves root as Start does, with gofakes3's file backend over an atomicFs.
func openBackend(t testing.TB, root string) (*atomicFs, *s3afero.MultiBucketBackend) {
	t.Helper()
	fs, err := newAtomicFs(root)
	if err != nil {
		t.Fatal(err)
	}
	files, err := s3afero.MultiBucket(fs)
	if err != nil {
		t.Fatal(err)
	}
	return fs, files
}

// An object is on disk whole or not at all, as in S3: a process killed in the middle of a PUT
// (kill -9 of fin up) must leave the previous object, never the first half of the new one (a
// capture manifest cut off in its JSON stopped the capture for good, in 66-lost-lake.sh). The
// request layer spools a body before the backend sees it, so this drives the backend itself.
func TestObjectIsWholeOnDiskDuringAndAfterAPut(t *testing.T) {
	root := filepath.Join(t.TempDir(), "s3")
	fs, files := openBackend(t, root)
	if _, _, err := dropUnstored(root); err != nil { // Start's, which makes the PUTs' markers' directory
		t.Fatal(err)
	}
	if err := files.CreateBucket("lake"); err != nil {
		t.Fatal(err)
	}
	backend := &notifying{Backend: files, fs: fs, emit: func(events.S3Event) {}, region: Region}
	const key = "_manifest/capture/fin.json"
	onDisk := filepath.Join(root, "buckets", "lake", filepath.FromSlash(key))
	put := func(r io.Reader, size int) error {
		_, err := backend.PutObject("lake", key, nil, r, int64(size), nil)
		return err
	}
	previous := bytes.Repeat([]byte("1"), 300<<10)
	if err := put(bytes.NewReader(previous), len(previous)); err != nil {
		t.Fatalf("put the first version: %v", err)
	}

	for _, tc := range []struct {
		name string
		end  error // how the stalled body ends: nil completes it
		keep bool  // the previous object stays
	}{
		{name: "a body that fails half way", end: errors.New("client went away"), keep: true},
		{name: "a body that completes", end: nil, keep: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := &stalling{body: bytes.Repeat([]byte("2"), 400<<10), release: make(chan error)}
			done := make(chan error, 1)
			go func() { done <- put(body, len(body.body)) }()
			deadline := time.Now().Add(10 * time.Second)
			for !partOnDisk(root, onDisk, previous) {
				if time.Now().After(deadline) {
					t.Fatal("the backend held no part of the new body within 10s")
				}
				time.Sleep(5 * time.Millisecond)
			}
			if got, _ := os.ReadFile(onDisk); !bytes.Equal(got, previous) {
				t.Errorf("mid-PUT the object on disk is %d bytes, not the previous %d: a crash now would leave it torn", len(got), len(previous))
			}
			body.release <- tc.end
			if err := <-done; (err != nil) != (tc.end != nil) {
				t.Fatalf("put ended with %v", err)
			}
			want := previous
			if !tc.keep {
				want = body.body
			}
			obj, err := files.GetObject("lake", key, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(obj.Contents)
			obj.Contents.Close()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("after the PUT the object is %d bytes, want %d (keep the previous: %v)", len(got), len(want), tc.keep)
			}
			previous = want
		})
	}
	if left, _ := os.ReadDir(root + ".staging"); len(left) != 0 {
		t.Errorf("the staging directory keeps %d files after every PUT ended", len(left))
	}

	// What a crash leaves staged is dropped at the next start, never served.
	if err := os.WriteFile(filepath.Join(root+".staging", "put-crashed"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := newAtomicFs(root); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(root + ".staging"); len(left) != 0 {
		t.Errorf("a restart keeps %d staged files", len(left))
	}
}

// partOnDisk: some of the new body is on disk, staged or (the defect) in the object itself.
func partOnDisk(root, object string, previous []byte) bool {
	if got, err := os.ReadFile(object); err == nil && !bytes.Equal(got, previous) {
		return true
	}
	staged, _ := os.ReadDir(root + ".staging")
	for _, e := range staged {
		if info, err := e.Info(); err == nil && info.Size() > 0 {
			return true
		}
	}
	return false
}
