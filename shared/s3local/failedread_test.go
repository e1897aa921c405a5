package s3local

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/johannesboyne/gofakes3"
)

// failsAfterStoring is a file backend whose PUT stores the object and its metadata, then fails
// (a stand-in for a disk error on the last fsync): the PUT's files are in place until notifying
// takes them back. It tells inPlace when they are, and waits up to hold for readDone (the
// reader's reads ended) before it fails.
type failsAfterStoring struct {
	gofakes3.Backend
	inPlace  chan struct{}
	readDone chan struct{}
	hold     time.Duration
}

func (f *failsAfterStoring) PutObject(bucket, key string, meta map[string]string, input io.Reader,
	size int64, conditions *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	res, err := f.Backend.PutObject(bucket, key, meta, input, size, conditions)
	if err != nil {
		return res, err
	}
	close(f.inPlace)
	select {
	case <-f.readDone:
	case <-time.After(f.hold):
	}
	return res, errors.New("disk error after the object was in place")
}

// A failed PUT is never seen, as in S3: a GET, a HEAD or a listing made while its files are in
// place, before they are taken back, answers with what was there before: reads take the lock
// that orders a PUT with its undoing, or they would answer with the failed PUT's object.
func TestReadsNeverSeeAFailedPut(t *testing.T) {
	const key = "_manifest/capture/fin.json"
	previous, failed := []byte(`{"delivered_lsn":"0/1"}`), []byte(`{"delivered_lsn":"0/22"}`)
	for _, overwrite := range []bool{true, false} {
		t.Run(map[bool]string{true: "an overwrite", false: "a new key"}[overwrite], func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "s3")
			if _, _, err := dropUnstored(root); err != nil { // Start's, which makes the markers' directory
				t.Fatal(err)
			}
			fs, files := openBackend(t, root)
			if err := files.CreateBucket("lake"); err != nil {
				t.Fatal(err)
			}
			if overwrite {
				if _, err := files.PutObject("lake", key, nil, bytes.NewReader(previous), int64(len(previous)), nil); err != nil {
					t.Fatal(err)
				}
			}
			// Long enough for the reads to end in the window when they do not wait for the
			// undoing (they take milliseconds), under any load the tests run at.
			failing := &failsAfterStoring{Backend: files, inPlace: make(chan struct{}), readDone: make(chan struct{}), hold: 2 * time.Second}
			backend := &notifying{Backend: failing, fs: fs, emit: func(events.S3Event) {}, region: Region}

			type seen struct {
				body      []byte
				getErr    error
				headSize  int64
				headErr   error
				listed    map[string]int64
				listedErr error
			}
			reads := make(chan seen, 1)
			go func() {
				<-failing.inPlace
				var s seen
				if obj, err := backend.GetObject("lake", key, nil); err != nil {
					s.getErr = err
				} else {
					s.body, s.getErr = io.ReadAll(obj.Contents)
					obj.Contents.Close()
				}
				if obj, err := backend.HeadObject("lake", key); err != nil {
					s.headErr = err
				} else {
					s.headSize = obj.Size
				}
				list, err := backend.ListBucket("lake", nil, gofakes3.ListBucketPage{MaxKeys: 1000})
				s.listedErr = err
				if err == nil {
					s.listed = map[string]int64{}
					for _, c := range list.Contents {
						s.listed[c.Key] = c.Size
					}
				}
				close(failing.readDone)
				reads <- s
			}()
			if _, err := backend.PutObject("lake", key, nil, bytes.NewReader(failed), int64(len(failed)), nil); err == nil {
				t.Fatal("the PUT made to fail succeeded")
			}
			s := <-reads
			if overwrite {
				if s.getErr != nil || !bytes.Equal(s.body, previous) {
					t.Errorf("GET during the failed PUT: %q, %v; want the previous %q", s.body, s.getErr, previous)
				}
				if s.headErr != nil || s.headSize != int64(len(previous)) {
					t.Errorf("HEAD during the failed PUT: size %d, %v; want the previous's %d", s.headSize, s.headErr, len(previous))
				}
				if size, ok := s.listed[key]; s.listedErr != nil || !ok || size != int64(len(previous)) {
					t.Errorf("the listing during the failed PUT: %v, %v; want %s of the previous's %d bytes", s.listed, s.listedErr, key, len(previous))
				}
				return
			}
			if !gofakes3.HasErrorCode(s.getErr, gofakes3.ErrNoSuchKey) {
				t.Errorf("GET during the failed PUT of a new key: %q, %v; want NoSuchKey", s.body, s.getErr)
			}
			if !gofakes3.HasErrorCode(s.headErr, gofakes3.ErrNoSuchKey) {
				t.Errorf("HEAD during the failed PUT of a new key: size %d, %v; want NoSuchKey", s.headSize, s.headErr)
			}
			if s.listedErr != nil || len(s.listed) != 0 {
				t.Errorf("the listing during the failed PUT of a new key: %v, %v; want none", s.listed, s.listedErr)
			}
		})
	}
}
