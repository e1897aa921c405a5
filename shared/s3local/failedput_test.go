package s3local_test

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/s3local"
)

// A PUT that fails leaves what was there before, as in Amazon S3 (an interrupted or refused PUT
// creates no object; an overwrite that fails keeps the previous one), and cleans up after
// itself: no marker for the next start, no staged file, no directory made for a new key (the
// backend lists one as a common prefix). A PUT the backend refuses (Content-MD5, a precondition)
// must not keep its marker until the next start, and one that fails after the object is in place
// (its metadata not written) must not leave the new object, without metadata (every listing of
// its prefix would fail) or over the previous one. A body cut short never reaches
// the backend (Verify spools and checks it first); it is here to keep it so.
func TestFailedPutLeavesThePreviousObjectAndNoMarker(t *testing.T) {
	const key = "_manifest/capture/fin.json"
	previous, next := []byte(`{"delivered_lsn":"0/1"}`), []byte(`{"delivered_lsn":"0/2"}`)
	wrongMD5 := md5.Sum([]byte("not the body"))
	badDigest := map[string]string{"Content-MD5": base64.StdEncoding.EncodeToString(wrongMD5[:])}
	tests := []struct {
		name      string
		overwrite bool              // a previous version of the key is stored first
		cutShort  bool              // the body stops half way, the connection is closed
		header    map[string]string // of the failing PUT
		meta      bool              // the metadata cannot be written: its path is taken by a directory
		status    int
	}{
		{name: "body cut short, connection closed", overwrite: true, cutShort: true, status: http.StatusBadRequest},
		{name: "Content-MD5 that does not match", overwrite: true, header: badDigest, status: http.StatusBadRequest},
		{name: "Content-MD5 that does not match, a new key", header: badDigest, status: http.StatusBadRequest},
		{name: "If-None-Match on an existing key", overwrite: true, header: map[string]string{"If-None-Match": "*"}, status: http.StatusPreconditionFailed},
		{name: "metadata not written, a new key", meta: true, status: http.StatusInternalServerError},
		{name: "metadata not written, an overwrite", overwrite: true, meta: true, status: http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, dir := startS3(t)
			url := srv.URL + "/lake/" + key
			put := func(body []byte, header map[string]string) int {
				status, _ := do(t, signed(t, http.MethodPut, url, body, "", testCreds, time.Now(), s3local.Region, header))
				return status
			}
			if tt.overwrite {
				if status := put(previous, nil); status != http.StatusOK {
					t.Fatalf("put the previous version: %d", status)
				}
			}
			restore := func() {}
			if tt.meta {
				// A stand-in for a disk error on the metadata's write, after the object is in place.
				meta := filepath.Join(dir, "metadata", "lake", s3local.MetaName(key))
				if tt.overwrite {
					if err := os.Rename(meta, meta+".aside"); err != nil {
						t.Fatalf("the metadata is not where MetaName says (s3afero changed its layout?): %v", err)
					}
				}
				if err := os.MkdirAll(filepath.Join(meta, "taken"), 0o700); err != nil {
					t.Fatal(err)
				}
				restore = func() {
					err := os.RemoveAll(meta)
					if err == nil && tt.overwrite {
						err = os.Rename(meta+".aside", meta)
					}
					if err != nil {
						t.Fatal(err)
					}
				}
			}
			var status int
			if tt.cutShort {
				status = putCutShort(t, url, next)
			} else {
				status = put(next, tt.header)
			}
			restore()
			if status != tt.status {
				t.Fatalf("the failing PUT answered %d, want %d", status, tt.status)
			}
			onDisk, err := os.ReadFile(filepath.Join(dir, "buckets", "lake", filepath.FromSlash(key)))
			switch {
			case tt.overwrite && !bytes.Equal(onDisk, previous):
				t.Errorf("after the failed PUT the object on disk is %q (%v), want the previous %q", onDisk, err, previous)
			case !tt.overwrite && err == nil:
				t.Errorf("the failed PUT of a new key left the object %q on disk", onDisk)
			}
			if _, err := os.Stat(filepath.Join(dir, "buckets", "lake", "_manifest")); !tt.overwrite && err == nil {
				t.Error("the failed PUT of a new key left its directories, listed as a common prefix _manifest/")
			}
			for _, d := range []string{s3local.PendingDir(dir), filepath.Clean(dir) + ".staging"} {
				if left, err := os.ReadDir(d); err != nil || len(left) != 0 {
					t.Errorf("%s keeps %d files after the failed PUT (%v): the PUT did not clean up after itself", filepath.Base(d), len(left), err)
				}
			}
			got, err := getSigned(t, url)
			switch {
			case tt.overwrite && (err != nil || !bytes.Equal(got, previous)):
				t.Errorf("GET after the failed PUT: %q, %v; want the previous %q", got, err, previous)
			case !tt.overwrite && err == nil:
				t.Errorf("GET after the failed PUT of a new key: %q, want no such key", got)
			}
			if status := put(next, nil); status != http.StatusOK {
				t.Errorf("a PUT after the failed one answered %d, want 200", status)
			}
		})
	}
}

// getSigned GETs url with a signed request; a status other than 200 is an error.
func getSigned(t *testing.T, url string) ([]byte, error) {
	t.Helper()
	resp, err := http.DefaultClient.Do(signed(t, http.MethodGet, url, nil, "", testCreds, time.Now(), s3local.Region, nil))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = &statusError{resp.StatusCode}
	}
	return b, err
}

type statusError struct{ status int }

func (e *statusError) Error() string { return http.StatusText(e.status) }

// putCutShort sends a signed PUT of body over its own connection, stops half way through the
// body, closes the connection's sending side and returns the status the server answered.
func putCutShort(t *testing.T, url string, body []byte) int {
	t.Helper()
	req := signed(t, http.MethodPut, url, body, "", testCreds, time.Now(), s3local.Region, nil)
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", req.URL.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(wire.Bytes()[:wire.Len()-len(body)/2]); err != nil {
		t.Fatal(err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("no answer to the PUT cut short: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A PUT that a crash (kill -9) cut short in the middle of an overwrite was never answered: the
// next start puts back the object it was replacing, which the PUT kept as a hard link in staging
// until it ended. A start that emptied staging first would lose the previous object for good,
// and leave the new one with the previous one's metadata.
func TestCrashMidOverwriteKeepsThePreviousObject(t *testing.T) {
	const key = "_manifest/capture/fin.json"
	previous, next := []byte(`{"delivered_lsn":"0/1"}`), []byte(`{"delivered_lsn":"0/22"}`)
	for _, tc := range []struct {
		name     string
		metadata bool // the crash came after the new metadata was in place too
	}{
		{name: "the object in place, its metadata not yet"},
		{name: "the object and its metadata in place, the PUT not answered", metadata: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, dir := startS3(t)
			url := srv.URL + "/lake/" + key
			if status, _ := do(t, signed(t, http.MethodPut, url, previous, "", testCreds, time.Now(), s3local.Region, nil)); status != http.StatusOK {
				t.Fatalf("put the previous version: %d", status)
			}
			if err := srv.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s3local.CrashMidOverwrite(dir, "lake", key, next, tc.metadata); err != nil {
				t.Fatal(err)
			}
			if onDisk, err := os.ReadFile(filepath.Join(dir, "buckets", "lake", filepath.FromSlash(key))); err != nil || !bytes.Equal(onDisk, next) {
				t.Fatalf("the crash's state is not reproduced: the object on disk is %q (%v)", onDisk, err)
			}

			srv, err := s3local.Start(t.Context(), "127.0.0.1:0", dir, nil, s3local.WithBuckets("lake"), s3local.WithCredentials(testCreds))
			if err != nil {
				t.Fatalf("start after the crash: %v", err)
			}
			t.Cleanup(func() { srv.Close() })
			if got, err := getSigned(t, srv.URL+"/lake/"+key); err != nil || !bytes.Equal(got, previous) {
				t.Errorf("GET after the restart: %q, %v; want the previous %q", got, err, previous)
			}
			for _, d := range []string{s3local.PendingDir(dir), filepath.Clean(dir) + ".staging"} {
				if left, err := os.ReadDir(d); err != nil || len(left) != 0 {
					t.Errorf("%s keeps %d files after the start (%v)", filepath.Base(d), len(left), err)
				}
			}
		})
	}
}
