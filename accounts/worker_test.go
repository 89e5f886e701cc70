package accounts_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/accounts/mail"
	"github.com/authd/authd/internal/mailcatcher"
	"github.com/authd/authd/internal/testkit"
)

const hookSecret = "whsec-test-secret"

func startWorker(t *testing.T, pool *pgxpool.Pool, cfg accounts.WorkerConfig) {
	t.Helper()
	if cfg.BackoffBase == 0 {
		cfg.BackoffBase, cfg.BackoffMax = 20*time.Millisecond, 100*time.Millisecond
	}
	w, err := accounts.NewWorker(pool, zap.NewNop(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// freeAddr returns a loopback address nobody listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// verifySignature checks Authd-Signature as a receiver would.
func verifySignature(header string, body []byte) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
		return fmt.Errorf("bad t in %q", header)
	}
	m := hmac.New(sha256.New, []byte(hookSecret))
	m.Write([]byte(ts + "." + string(body)))
	want := hex.EncodeToString(m.Sum(nil))
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return fmt.Errorf("signature mismatch")
	}
	return nil
}

func TestWorker_WebhookRetriedUntilReceiverAnswers(t *testing.T) {
	ctx := context.Background()
	s, pool := MustServiceCfg(t, accounts.Config{Webhooks: true})
	addr := freeAddr(t) // the receiver is down: connections are refused
	u, err := s.Register(ctx, accounts.Registration{Email: "hook@example.com", Password: "tulip-garden-42"})
	if err != nil {
		t.Fatal(err)
	}
	startWorker(t, pool, accounts.WorkerConfig{WebhookURL: "http://" + addr + "/hook", WebhookSecret: hookSecret})
	testkit.Eventually(t, 10*time.Second, "two failed attempts", func() bool {
		return countRows(t, pool, `SELECT count(*) FROM outbox WHERE kind='webhook' AND attempts >= 2 AND last_error <> ''`) == 1
	})

	type delivery struct {
		header http.Header
		body   []byte
	}
	got := make(chan delivery, 10)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- delivery{r.Header.Clone(), b}
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()

	var d delivery
	select {
	case d = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("webhook not delivered after the receiver came up")
	}
	if err := verifySignature(d.header.Get("Authd-Signature"), d.body); err != nil {
		t.Fatal(err)
	}
	var env struct {
		ID        string    `json:"id"`
		Type      string    `json:"type"`
		CreatedAt time.Time `json:"created_at"`
		Data      struct {
			UserID string   `json:"user_id"`
			Email  string   `json:"email"`
			Roles  []string `json:"roles"`
		} `json:"data"`
	}
	if err := json.Unmarshal(d.body, &env); err != nil {
		t.Fatal(err)
	}
	if env.Type != "user.registered" || env.ID == "" || env.ID != d.header.Get("Authd-Delivery") || env.CreatedAt.IsZero() ||
		env.Data.UserID != u.ID || env.Data.Email != u.Email || len(env.Data.Roles) != 1 {
		t.Fatalf("envelope = %s", d.body)
	}
	testkit.Eventually(t, 5*time.Second, "delivery recorded", func() bool {
		return countRows(t, pool, `SELECT count(*) FROM outbox WHERE kind='webhook' AND delivered_at IS NOT NULL`) == 1
	})
}

func TestWorker_TwoWorkersNeverDeliverOneEventConcurrently(t *testing.T) {
	ctx := context.Background()
	_, pool := MustServiceCfg(t, accounts.Config{})
	const n = 40
	for i := 0; i < n; i++ {
		if _, err := pool.Exec(ctx, `INSERT INTO outbox (kind, type, payload) VALUES ('webhook', 'user.updated', jsonb_build_object('i', $1::int))`, i); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	inflight, seen := map[string]bool{}, map[string]int{}
	var overlap []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("Authd-Delivery")
		mu.Lock()
		if inflight[id] {
			overlap = append(overlap, id)
		}
		inflight[id] = true
		seen[id]++
		mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		inflight[id] = false
		mu.Unlock()
	}))
	defer srv.Close()
	cfg := accounts.WorkerConfig{WebhookURL: srv.URL, WebhookSecret: hookSecret, Batch: 3}
	startWorker(t, pool, cfg)
	startWorker(t, pool, cfg)
	testkit.Eventually(t, 20*time.Second, "all delivered", func() bool {
		return countRows(t, pool, `SELECT count(*) FROM outbox WHERE delivered_at IS NOT NULL`) == n
	})
	mu.Lock()
	defer mu.Unlock()
	if len(overlap) > 0 {
		t.Fatalf("delivered concurrently: %v", overlap)
	}
	if len(seen) != n {
		t.Fatalf("distinct deliveries = %d, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("event %s delivered %d times", id, c)
		}
	}
}

func TestWorker_CrashedWorkersLeaseExpires(t *testing.T) {
	ctx := context.Background()
	_, pool := MustServiceCfg(t, accounts.Config{})
	// A worker claimed this row and died: it is leased for 300ms.
	if _, err := pool.Exec(ctx, `INSERT INTO outbox (kind, type, payload, attempts, lease_id, next_attempt_at)
		VALUES ('webhook', 'user.updated', '{}', 1, gen_random_uuid(), now() + interval '300 milliseconds')`); err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- struct{}{} }))
	defer srv.Close()
	startWorker(t, pool, accounts.WorkerConfig{WebhookURL: srv.URL, WebhookSecret: hookSecret, PollInterval: 50 * time.Millisecond})
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("row of a crashed worker never retried")
	}
}

func TestWorker_MailQueuedWhileSMTPDownDeliveredOnceAfter(t *testing.T) {
	ctx := context.Background()
	s, pool := MustServiceCfg(t, accounts.Config{BaseURL: "http://authd.test"})
	addr := freeAddr(t)
	sender, err := mail.NewSender(mail.Config{URL: "smtp://" + addr + "?starttls=false", From: "authd <no-reply@authd.test>", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const n = 3
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, err := s.Register(ctx, accounts.Registration{Email: fmt.Sprintf("m%d@example.com", i), Password: "tulip-garden-42"}); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("registration waited %s (for SMTP?)", d)
		}
	}
	startWorker(t, pool, accounts.WorkerConfig{Mailer: sender, MailFrom: sender.From()})
	testkit.Eventually(t, 10*time.Second, "failed attempts on every message", func() bool {
		return countRows(t, pool, `SELECT count(*) FROM outbox WHERE kind='mail' AND attempts >= 2 AND delivered_at IS NULL`) == n
	})
	c, err := mailcatcher.New(mailcatcher.Config{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.Wait(wctx, n); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "deliveries recorded", func() bool {
		return countRows(t, pool, `SELECT count(*) FROM outbox WHERE kind='mail' AND delivered_at IS NOT NULL`) == n
	})
	// Every row is delivered and nothing is due: a duplicate can no longer come.
	msgs := c.Messages()
	if len(msgs) != n {
		t.Fatalf("caught %d messages, want exactly %d", len(msgs), n)
	}
	to := map[string]bool{}
	for _, m := range msgs {
		to[m.To[0]] = true
		if m.Subject != "Verify your email address" || len(m.Links) != 1 || !strings.HasPrefix(m.Links[0], "http://authd.test/verify-email?token=") {
			t.Errorf("message = %q %v", m.Subject, m.Links)
		}
	}
	if len(to) != n {
		t.Errorf("recipients = %v", to)
	}
	if k := countRows(t, pool, `SELECT count(*) FROM outbox WHERE kind='mail' AND payload ? 'data'`); k != 0 {
		t.Errorf("%d delivered mails still hold their links", k)
	}
}

func TestWorker_FreshRowDeliveredWithoutWaitingForPoll(t *testing.T) {
	ctx := context.Background()
	s, pool := MustServiceCfg(t, accounts.Config{Webhooks: true})
	got := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- struct{}{} }))
	defer srv.Close()
	startWorker(t, pool, accounts.WorkerConfig{WebhookURL: srv.URL, WebhookSecret: hookSecret, PollInterval: time.Minute})
	// Let the worker go idle: its first scan finds nothing.
	testkit.Eventually(t, 5*time.Second, "listener up", func() bool {
		return countRows(t, pool, `SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN authd_outbox' AND datname = current_database()`) == 1
	})
	start := time.Now()
	if _, err := s.Register(ctx, accounts.Registration{Email: "fast@example.com", Password: "tulip-garden-42"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
		if d := time.Since(start); d > time.Second {
			t.Errorf("delivered after %s, want well under a second", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("fresh event waited for the poll interval: NOTIFY not heard")
	}
}
