package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/config"
	"github.com/authd/authd/internal/logging"
	"github.com/authd/authd/internal/testkit"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(storagetest.Main(m)) }

// testServer runs the real application (buildApp) on a loopback port.
type testServer struct {
	URL  string
	stop func()
}

func startServer(t *testing.T, dbURL string, env []string, sink *logging.LogstashSink) *testServer {
	t.Helper()
	env = append([]string{"AUTHD_SECRETS_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "AUTHD_BCRYPT_COST=4"}, env...)
	cfg, err := config.FromEnv(env)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Issuer = "http://" + ln.Addr().String()
	cfg.DatabaseURL = dbURL
	log := zap.NewNop()
	if sink != nil {
		log, _ = logging.New(logging.Options{Format: "json", Level: "info", Logstash: sink, Output: zap.CombineWriteSyncers()})
	}
	pool, err := storage.Open(context.Background(), dbURL, storage.PoolConfig{ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rt := &runtime{cfg: cfg, log: log, pool: pool, reg: prometheus.NewRegistry(), logstash: sink, ready: make(chan struct{}), listener: ln}
	done := make(chan error, 1)
	go func() { done <- serveRuntime(ctx, rt, time.Now()) }()
	select {
	case <-rt.ready:
	case err := <-done:
		t.Fatalf("server failed to start: %v", err)
	}
	ts := &testServer{URL: cfg.Issuer}
	ts.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
		pool.Close()
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			ts.stop()
		}
	})
	return ts
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestReadyz_FollowsDatabaseWithoutRestart(t *testing.T) {
	cluster := storagetest.NewCluster(t)
	ts := startServer(t, cluster.URL("authd"), nil, nil)
	if code, body := get(t, ts.URL+"/readyz"); code != 200 {
		t.Fatalf("readyz with database up: %d %s", code, body)
	}
	if err := cluster.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "/readyz 503", func() bool {
		code, body := get(t, ts.URL+"/readyz")
		return code == 503 && strings.Contains(body, "unavailable")
	})
	if code, _ := get(t, ts.URL+"/healthz"); code != 200 {
		t.Fatalf("healthz must stay 200 while the database is down, got %d", code)
	}
	// A page that needs the database fails with 503, never 500.
	if resp := postLogin(t, browser(t), ts.URL, "someone@example.com", "a-password"); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("POST /login with the database down: %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if err := cluster.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "/readyz 200 after restart", func() bool {
		code, _ := get(t, ts.URL+"/readyz")
		return code == 200
	})
}

func TestServer_LogstashDownRequestsStillServedAndDropsCounted(t *testing.T) {
	db := storagetest.NewDB(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // Logstash is down
	sink := logging.NewLogstashSink(addr, 4)
	defer sink.Close()
	ts := startServer(t, db.URL, nil, sink)
	for i := 0; i < 50; i++ {
		if code, _ := get(t, ts.URL+"/healthz"); code != 200 {
			t.Fatalf("request %d failed with Logstash down: %d", i, code)
		}
	}
	testkit.Eventually(t, 5*time.Second, "drop counter to rise", func() bool {
		_, metrics := get(t, ts.URL+"/metrics")
		for _, line := range strings.Split(metrics, "\n") {
			if strings.HasPrefix(line, "authd_log_lines_dropped_total ") && strings.TrimPrefix(line, "authd_log_lines_dropped_total ") != "0" {
				return true
			}
		}
		return false
	})
}

func TestServer_UnknownRouteIsProblemJSON(t *testing.T) {
	db := storagetest.NewDB(t)
	ts := startServer(t, db.URL, nil, nil)
	resp, err := http.Get(ts.URL + "/definitely/not/here")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func openPool(url string) (*pgxpool.Pool, error) {
	return storage.Open(context.Background(), url, storage.PoolConfig{MaxConns: 4})
}

// mustAccounts returns an accounts service on the test database (bcrypt cost 4).
func mustAccounts(t *testing.T, url string) *accounts.Service {
	t.Helper()
	pool, err := openPool(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	h, _ := accounts.NewPasswordHasher("bcrypt", 4, 0)
	return accounts.New(pool, h, zap.NewNop(), accounts.Config{})
}
