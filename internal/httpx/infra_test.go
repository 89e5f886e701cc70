package httpx_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zapcore"

	"github.com/authd/authd/internal/clientip"
	"github.com/authd/authd/internal/httpx"
	"github.com/authd/authd/internal/logging"
	"github.com/authd/authd/internal/ratelimit"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(storagetest.Main(m)) }

// readyz asks h for /readyz and returns the status, reason and Retry-After.
func readyz(t *testing.T, h http.Handler) (int, string, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	var body struct{ Reason string }
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	return rec.Code, body.Reason, rec.Header().Get("Retry-After")
}

func openPool(t *testing.T, url string, cfg storage.PoolConfig) *pgxpool.Pool {
	t.Helper()
	pool, err := storage.Open(context.Background(), url, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func TestReadyz_PoolSaturated(t *testing.T) {
	db := storagetest.NewDB(t)
	pool := openPool(t, db.URL, storage.PoolConfig{MaxConns: 1, AcquireTimeout: 200 * time.Millisecond})
	h := httpx.Readyz(pool, 200*time.Millisecond)
	if code, why, _ := readyz(t, h); code != http.StatusOK {
		t.Fatalf("idle pool: %d %s", code, why)
	}
	held, err := pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, why, retry := readyz(t, h)
	if code != http.StatusServiceUnavailable || !strings.Contains(why, "pool saturated") || retry == "" {
		t.Fatalf("every connection in use: %d %q Retry-After %q, want 503 pool saturated", code, why, retry)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("/readyz took %s on a saturated pool", d)
	}
	held.Release()
	if code, why, _ := readyz(t, h); code != http.StatusOK {
		t.Fatalf("connection back: %d %s", code, why)
	}
}

func TestReadyz_ReadOnlyDatabase(t *testing.T) {
	db := storagetest.NewDB(t)
	if _, err := db.Pool.Exec(context.Background(), `ALTER DATABASE "`+db.Name+`" SET default_transaction_read_only = on`); err != nil {
		t.Fatal(err)
	}
	// A new pool: the setting applies to new sessions.
	pool := openPool(t, db.URL, storage.PoolConfig{MaxConns: 2})
	code, why, retry := readyz(t, httpx.Readyz(pool, time.Second))
	if code != http.StatusServiceUnavailable || why != "the database is read-only" || retry == "" {
		t.Fatalf("read-only database: %d %q Retry-After %q", code, why, retry)
	}
}

// A write that fails for want of disk space turns /readyz 503 naming it,
// although the probe itself (writing nothing) succeeds, until the hold ends.
func TestReadyz_DiskFull(t *testing.T) {
	ctx := context.Background()
	db := storagetest.NewDB(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	wh := &storage.WriteHealth{Hold: 3 * time.Second, Now: func() time.Time { return now }}
	pool := openPool(t, db.URL, storage.PoolConfig{MaxConns: 2, WriteHealth: wh})
	h := httpx.Readyz(pool, time.Second)
	if code, why, _ := readyz(t, h); code != http.StatusOK {
		t.Fatalf("before: %d %q", code, why)
	}
	// Postgres reports a file it cannot extend on a full disk as 53100.
	if _, err := pool.Exec(ctx, `DO $$ BEGIN RAISE EXCEPTION 'could not extend file' USING ERRCODE = 'disk_full'; END $$`); err == nil {
		t.Fatal("no error")
	}
	code, why, retry := readyz(t, h)
	if code != http.StatusServiceUnavailable || why != "the database disk is full" || retry != "3" {
		t.Fatalf("after a disk-full failure: %d %q Retry-After %q", code, why, retry)
	}
	now = now.Add(3 * time.Second)
	if code, why, _ := readyz(t, h); code != http.StatusOK {
		t.Fatalf("after the hold: %d %q", code, why)
	}
}

// The access log, clientip.Of and the limiters' key see the address the
// trusted proxy reports, and the peer when the proxy is not trusted.
func TestObserveBehind_OneClientAddressForLogsAndLimits(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []string
		want    string
	}{
		{"TrustedProxy", []string{"127.0.0.1/32"}, "203.0.113.9"},
		{"SpoofFromUntrustedPeer", nil, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf syncBuffer
			log, err := logging.New(logging.Options{Format: "json", Level: "info", Output: zapcore.AddSync(&buf)})
			if err != nil {
				t.Fatal(err)
			}
			prefixes, err := clientip.ParsePrefixes(tc.trusted)
			if err != nil {
				t.Fatal(err)
			}
			var seen, key string
			r := mux.NewRouter()
			r.HandleFunc("/x", func(w http.ResponseWriter, r *http.Request) { seen, key = clientip.Of(r), ratelimit.ClientIP(r) })
			srv := httpServer(t, httpx.ObserveBehind(log, httpx.NewMetrics(prometheus.NewRegistry()), clientip.NewResolver(prefixes, clientip.XForwardedFor))(r))
			req, _ := http.NewRequest(http.MethodGet, srv+"/x", nil)
			req.Header.Set("X-Forwarded-For", "198.51.100.1, 203.0.113.9")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if seen != tc.want || key != tc.want {
				t.Fatalf("handler saw %q (limit key %q), want %q", seen, key, tc.want)
			}
			if !strings.Contains(buf.String(), `"remote":"`+tc.want+`"`) {
				t.Fatalf("access log lacks remote %s:\n%s", tc.want, buf.String())
			}
		})
	}
}

func TestDeadline_BoundsEveryRequest(t *testing.T) {
	var left time.Duration
	h := httpx.Deadline(300 * time.Millisecond)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := r.Context().Deadline()
		if !ok {
			t.Error("no deadline")
		}
		left = time.Until(d)
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if left <= 0 || left > 300*time.Millisecond {
		t.Fatalf("deadline %s away", left)
	}
}
