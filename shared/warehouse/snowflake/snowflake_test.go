package snowflake_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze/bronzetest"
	"github.com/fin-orchestrator/fin-orchestrator/shared/loader"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/snowflake"
)

// server is the one fakesnow server the tests of this package share (each test uses its own
// database in it); it starts on first use and stops when the tests end.
var server struct {
	once sync.Once
	cmd  *exec.Cmd
	port int
	err  error
	logs strings.Builder
	mu   sync.Mutex
}

func TestMain(m *testing.M) {
	code := m.Run()
	if server.cmd != nil {
		server.cmd.Process.Kill()
		server.cmd.Wait()
	}
	os.Exit(code)
}

// fakesnow returns the port of the shared fakesnow server of the project's venv, started on an
// ephemeral port. Without the venv the test is skipped, except in CI, where it must run.
func fakesnow(t *testing.T) int {
	t.Helper()
	bin := filepath.Join(repoRoot(t), ".venv", "bin", "fakesnow")
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("fakesnow is not installed at %s: run scripts/venv.sh", bin)
		}
		t.Skipf("fakesnow is not installed at %s (scripts/venv.sh installs it)", bin)
	}
	server.once.Do(func() { server.port, server.err = startFakesnow(bin) })
	if server.err != nil {
		t.Fatalf("start fakesnow: %v\n%s", server.err, fakesnowLogs())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("fakesnow log:\n%s", fakesnowLogs())
		}
	})
	return server.port
}

func fakesnowLogs() string {
	server.mu.Lock()
	defer server.mu.Unlock()
	return server.logs.String()
}

func startFakesnow(bin string) (int, error) {
	// Without -p fakesnow binds a free port itself and prints it.
	cmd := exec.Command(bin, "-s", "--host", "127.0.0.1")
	// If the test binary dies without reaching TestMain's cleanup, the server dies with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	server.cmd = cmd
	ready := regexp.MustCompile(`running on http://127\.0\.0\.1:(\d+)`)
	ports := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			server.mu.Lock()
			server.logs.WriteString(sc.Text() + "\n")
			server.mu.Unlock()
			if m := ready.FindStringSubmatch(sc.Text()); m != nil {
				p, _ := strconv.Atoi(m[1])
				ports <- p
			}
		}
	}()
	select {
	case p := <-ports:
		return p, nil
	case <-time.After(90 * time.Second):
		return 0, fmt.Errorf("fakesnow did not start within 90s")
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// openFake opens the warehouse on fakesnow with an external stage over bucket dir root/lake, as an
// administrator creates one over the S3 bucket (fakesnow reads file:// URLs, not s3://).
func openFake(t *testing.T, port int, root string) *snowflake.Warehouse {
	db := "FIN_" + strings.ToUpper(regexp.MustCompile(`\W`).ReplaceAllString(t.Name(), "_"))
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wh, err := snowflake.Open(ctx, snowflake.Config{
		Account: "fakesnow", User: "fin_loader", Database: db, Warehouse: "LOAD_WH", Role: "LOADER",
		PrivateKey: key, MaxRetries: 1,
		Host: "127.0.0.1", Port: port, Protocol: "http",
	})
	if err != nil {
		t.Fatalf("open Snowflake warehouse on fakesnow: %v", err)
	}
	t.Cleanup(func() { wh.Close() })
	if _, err := wh.DB().ExecContext(ctx, "CREATE STAGE IF NOT EXISTS RAW.BRONZE_STAGE URL = 'file://"+filepath.Join(root, "lake")+"/'"); err != nil {
		t.Fatalf("create the stage over the bucket: %v", err)
	}
	return wh
}

func created(bucket string, keys ...string) events.S3Event {
	var ev events.S3Event
	for _, k := range keys {
		var rec events.S3EventRecord
		rec.EventName = "s3:ObjectCreated:Put"
		rec.S3.Bucket.Name = bucket
		rec.S3.Object.Key = url.QueryEscape(k)
		ev.Records = append(ev.Records, rec)
	}
	return ev
}

func queryString(t *testing.T, wh *snowflake.Warehouse, q string) string {
	t.Helper()
	var s string
	if err := wh.DB().QueryRow(q).Scan(&s); err != nil {
		t.Fatalf("query %q: %v", q, err)
	}
	return s
}

func TestSnowflakeLoadOverTheWire(t *testing.T) {
	root := t.TempDir()
	wh := openFake(t, fakesnow(t), root)
	h := loader.NewHandler(wh, loader.DirObjects(root))
	ctx := context.Background()
	put := func(table string, first int64, n int) string {
		key, err := bronzetest.Put(root, "lake", table, bronzetest.Records(table, first, n, map[string]string{"nickname": "Bo"}))
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	k1, k2 := put("accounts", 0, 120), put("accounts", 120, 30)
	if err := h.Handle(ctx, created("lake", k1, k2)); err != nil {
		t.Fatalf("load two objects: %v", err)
	}
	if got := queryString(t, wh, "SELECT COUNT(*) FROM RAW.ACCOUNTS"); got != "150" {
		t.Fatalf("RAW.ACCOUNTS has %s rows after loading 120+30 bronze rows", got)
	}
	// Redelivery: a no-op, by the ledger.
	if err := h.Handle(ctx, created("lake", k1, k2)); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	if got := queryString(t, wh, "SELECT COUNT(*) FROM RAW.ACCOUNTS"); got != "150" {
		t.Fatalf("RAW.ACCOUNTS has %s rows after redelivery, want still 150", got)
	}
	if m := h.Metrics(); m.ObjectsLoaded != 2 || m.RowsLoaded != 150 || m.Duplicates != 2 {
		t.Fatalf("metrics %+v, want 2 loads, 150 rows, 2 duplicates", m)
	}
	// The row images are VARIANT: a path reads the money string and a column the source added.
	row := queryString(t, wh, `SELECT TOPIC || '|' || "OFFSET" || '|' || OP || '|' || AFTER:amount::VARCHAR || '|' ||
		AFTER:nickname::VARCHAR || '|' || _OBJECT_KEY FROM RAW.ACCOUNTS WHERE "OFFSET" = 7`)
	if want := "fin.public.accounts|7|c|21.07|Bo|" + k1; row != want {
		t.Fatalf("row of offset 7 = %q, want %q", row, want)
	}
	ledger := queryString(t, wh, "SELECT LISTAGG(ROW_COUNT, ',') WITHIN GROUP (ORDER BY OBJECT_KEY) FROM RAW._LOAD_LEDGER")
	if ledger != "120,30" {
		t.Fatalf("ledger row counts %s, want 120,30", ledger)
	}

	// A corrupt object fails alone; the object after it in the event loads.
	corrupt := bronzetest.KeyAt("customers", 0, 9)
	if err := bronzetest.PutBytes(root, "lake", corrupt, []byte("PAR1 this is not parquet")); err != nil {
		t.Fatal(err)
	}
	good := put("customers", 10, 5)
	err := h.Handle(ctx, created("lake", corrupt, good))
	if err == nil || !strings.Contains(err.Error(), corrupt) {
		t.Fatalf("corrupt object: error %v, want one naming %s", err, corrupt)
	}
	if got := queryString(t, wh, "SELECT COUNT(*) || '/' || COUNT(DISTINCT _OBJECT_KEY) FROM RAW.CUSTOMERS"); got != "5/1" {
		t.Fatalf("RAW.CUSTOMERS rows/objects = %s, want 5/1 (only the good object)", got)
	}
	if got := queryString(t, wh, "SELECT COUNT(*) FROM RAW._LOAD_LEDGER WHERE OBJECT_KEY = '"+corrupt+"'"); got != "0" {
		t.Fatalf("the corrupt object has %s ledger rows, want 0", got)
	}
	if m := h.Metrics(); m.FailureCount() != 1 {
		t.Fatalf("failures %v, want exactly one", m.Failures)
	}
	// fakesnow answers a corrupt file with HTTP 500 (Snowflake with a data error, SQL state 22000,
	// which the loader counts as bad_object): here it is counted as a warehouse failure.
	t.Logf("corrupt object error: %v", err)
}

func TestSnowflakeRewrittenObjectIsReloaded(t *testing.T) {
	root := t.TempDir()
	wh := openFake(t, fakesnow(t), root)
	h := loader.NewHandler(wh, loader.DirObjects(root))
	recs := bronzetest.Records("transactions", 0, 8, nil)
	key, err := bronzetest.Put(root, "lake", "transactions", recs)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Handle(context.Background(), created("lake", key)); err != nil {
		t.Fatal(err)
	}
	// Same key, new bytes (a new ETag): the COPY must FORCE past Snowflake's load metadata.
	if _, err := bronzetest.Put(root, "lake", "transactions", bronzetest.Records("transactions", 0, 8, map[string]string{"v": "2"})); err != nil {
		t.Fatal(err)
	}
	if err := h.Handle(context.Background(), created("lake", key)); err != nil {
		t.Fatal(err)
	}
	got := queryString(t, wh, "SELECT COUNT(*) || '/' || COUNT(AFTER:v) FROM RAW.TRANSACTIONS")
	if got != "8/8" {
		t.Fatalf("after a rewrite RAW.TRANSACTIONS rows/rows of the new version = %s, want 8/8", got)
	}
}

// Concurrent Lambdas delivering one object: the lock row makes them take turns in Snowflake.
// fakesnow (DuckDB underneath) refuses the second writer with a conflict instead of waiting, so a
// delivery may fail here; its retry, as Lambda makes it, must then be a duplicate.
func TestSnowflakeConcurrentDeliveriesLoadOnce(t *testing.T) {
	root := t.TempDir()
	wh := openFake(t, fakesnow(t), root)
	h := loader.NewHandler(wh, loader.DirObjects(root))
	key, err := bronzetest.Put(root, "lake", "accounts", bronzetest.Records("accounts", 0, 40, nil))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Lambda retries a failed asynchronous invocation after a pause; so does this.
			var err error
			for attempt := 0; attempt < 5; attempt++ {
				if err = h.Handle(context.Background(), created("lake", key)); err == nil {
					return
				}
				t.Logf("delivery failed (a conflict on fakesnow), retrying: %v", err)
				time.Sleep(time.Duration(attempt+1) * 300 * time.Millisecond)
			}
			t.Errorf("delivery still failing after 5 attempts: %v", err)
		}()
	}
	wg.Wait()
	if got := queryString(t, wh, "SELECT COUNT(*) || '/' || (SELECT COUNT(*) FROM RAW._LOAD_LEDGER) FROM RAW.ACCOUNTS"); got != "40/1" {
		t.Fatalf("rows/ledger rows = %s after 4 concurrent deliveries of one 40-row object, want 40/1", got)
	}
	if m := h.Metrics(); m.ObjectsLoaded != 1 {
		t.Fatalf("metrics %+v, want exactly 1 load", m)
	}
}
