package landing_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/minio/minio-go/v7"

	"github.com/fin-orchestrator/fin-orchestrator/shared/landing"
	"github.com/fin-orchestrator/fin-orchestrator/shared/objectstore"
	"github.com/fin-orchestrator/fin-orchestrator/shared/s3local"
)

// TestLandingOnRealS3 lands a batch on a real S3 server and, for versitygw, receives its
// webhook notifications. scripts/test.d/40-landing-versitygw.sh runs it with
// FIN_TEST_VERSITYGW=<versitygw binary>: the test starts the server itself on an ephemeral port,
// after its webhook receiver (versitygw refuses to start when the webhook does not answer).
// FIN_TEST_S3_ENDPOINT (+ FIN_TEST_S3_ACCESS_KEY, FIN_TEST_S3_SECRET_KEY) runs it against any
// other S3 instead, without the webhook check. With neither, it is skipped.
func TestLandingOnRealS3(t *testing.T) {
	var (
		mu       sync.Mutex
		created  []string
		endpoint = os.Getenv("FIN_TEST_S3_ENDPOINT")
		access   = os.Getenv("FIN_TEST_S3_ACCESS_KEY")
		secret   = os.Getenv("FIN_TEST_S3_SECRET_KEY")
		webhook  bool
	)
	if bin := os.Getenv("FIN_TEST_VERSITYGW"); bin != "" {
		token := randomHex(t, 8)
		hook := serveWebhook(t, token, func(ev events.S3Event) {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range ev.Records {
				created = append(created, r.S3.Bucket.Name+"/"+r.S3.Object.URLDecodedKey)
			}
		})
		access, secret = "test"+randomHex(t, 4), randomHex(t, 16)
		// versitygw cannot send headers; Go's client sends the URL's user info as Basic auth.
		endpoint = startVersitygw(t, bin, access, secret, strings.Replace(hook, "http://", "http://fin:"+token+"@", 1))
		webhook = true
	}
	if endpoint == "" {
		t.Skip("neither FIN_TEST_VERSITYGW nor FIN_TEST_S3_ENDPOINT set: run scripts/test.d/40-landing-versitygw.sh")
	}
	client, err := objectstore.Open(objectstore.Config{Endpoint: endpoint, AccessKey: access, SecretKey: secret})
	if err != nil {
		t.Fatal(err)
	}

	name := "landing-test-" + strings.ToLower(time.Now().UTC().Format("20060102t150405.000000000"))
	name = strings.ReplaceAll(name, ".", "-")
	if err := client.MakeBucket(t.Context(), name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket %s: %v", name, err)
	}
	t.Cleanup(func() { removeBucket(t, client, name) })

	ev := accountBatch()
	ev.Records[accounts+"-0"] = append(ev.Records[accounts+"-0"], record(accounts, 0, 14, `{"id":"x"}`, "not json"))
	land := func() map[string][]byte {
		t.Helper()
		h, err := landing.NewHandler(landing.Config{Bucket: name}, client)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := h.Handle(t.Context(), ev)
		if err != nil || len(resp.BatchItemFailures) > 0 {
			t.Fatalf("Handle on %s = %+v, %v", endpoint, resp, err)
		}
		objs := map[string][]byte{}
		for o := range client.ListObjects(t.Context(), name, minio.ListObjectsOptions{Recursive: true}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			obj, err := client.GetObject(t.Context(), name, o.Key, minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if _, err := buf.ReadFrom(obj); err != nil {
				t.Fatalf("read %s: %v", o.Key, err)
			}
			obj.Close()
			objs[o.Key] = buf.Bytes()
		}
		return objs
	}
	first := land()
	want := []string{
		"bronze/accounts/dt=2026-11-25/fin.public.accounts-0-10-14-e3b0c442.parquet",
		"bronze/accounts/dt=2026-11-25/fin.public.accounts-1-7-7-e3b0c442.parquet",
		"dlq/fin.public.accounts/e3b0c442-0-14.json",
	}
	var keys []string
	for k := range first {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, want) {
		t.Fatalf("objects on %s: %v, want %v", endpoint, keys, want)
	}
	if rows := readRows(t, first[want[0]]); len(rows) != 3 || deref(rows[0].After) != `{"id":"a1","balance":"12345.67","currency":"EUR"}` {
		t.Errorf("rows read back from %s: %+v", endpoint, rows)
	}
	again := land()
	for k, b := range first {
		if !bytes.Equal(b, again[k]) {
			t.Errorf("%s changed on redelivery: %d bytes then %d: %q vs %q", k, len(b), len(again[k]), b[:min(len(b), 40)], again[k][:min(len(again[k]), 40)])
		}
	}

	if !webhook {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		got := slices.Clone(created)
		mu.Unlock()
		missing := slices.DeleteFunc(slices.Clone(want), func(k string) bool { return slices.Contains(got, name+"/"+k) })
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ObjectCreated webhook event for %v within 10s (got %v)", missing, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func removeBucket(t *testing.T, client *minio.Client, name string) {
	t.Helper()
	ctx := context.Background() // t.Context() is already cancelled in clean-up
	var errs []error
	for o := range client.ListObjects(ctx, name, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err == nil {
			o.Err = client.RemoveObject(ctx, name, o.Key, minio.RemoveObjectOptions{})
		}
		errs = append(errs, o.Err)
	}
	errs = append(errs, client.RemoveBucket(ctx, name))
	if err := errors.Join(errs...); err != nil {
		t.Errorf("clean up bucket %s: %v", name, err)
	}
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// serveWebhook receives S3 notifications on an ephemeral port and returns its URL.
func serveWebhook(t *testing.T, token string, onCreated func(events.S3Event)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("webhook listener: %v", err)
	}
	srv := &http.Server{Handler: s3local.WebhookHandler(token, onCreated, nil), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/s3-events"
}

// startVersitygw runs versitygw on a free loopback port with a throw-away posix root and
// returns its endpoint once it accepts connections.
func startVersitygw(t *testing.T, bin, access, secret, webhookURL string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	for _, d := range []string{"data", "meta"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "--port", addr, "--quiet", "posix", "--sidecar", filepath.Join(dir, "meta"), filepath.Join(dir, "data"))
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+access, "ROOT_SECRET_ACCESS_KEY="+secret,
		"VGW_EVENT_WEBHOOK_URL="+webhookURL)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("versitygw output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return "http://" + addr
		}
		select {
		case <-exited:
			t.Fatalf("versitygw exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw not listening on %s after 20s: %s", addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
