package accounts_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/storage/storagetest"
)

// senderFunc is a LogoutSender made of a function.
type senderFunc func(ctx context.Context, d accounts.LogoutDelivery) error

func (f senderFunc) SendLogout(ctx context.Context, d accounts.LogoutDelivery) error {
	return f(ctx, d)
}

var _ accounts.LogoutSender = senderFunc(nil)

// A logout notice the relying party keeps refusing is retried with backoff
// until LogoutMaxAge, then given up: no longer claimed, counted, and listed
// as failed with its last error.
func TestWorker_LogoutGivenUpAfterMaxAge(t *testing.T) {
	ctx := context.Background()
	db := storagetest.NewDB(t)
	reg := prometheus.NewRegistry()
	m, err := accounts.NewMetrics(reg, db.Pool, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	w, err := accounts.NewWorker(db.Pool, zap.NewNop(), accounts.WorkerConfig{
		Logouts: senderFunc(func(context.Context, accounts.LogoutDelivery) error {
			calls.Add(1)
			return errors.New("the relying party answered 500 Internal Server Error")
		}),
		LogoutMaxAge: time.Hour, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond, Metrics: m,
	})
	if err != nil {
		t.Fatal(err)
	}
	// A fresh notice and one queued two hours ago.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO outbox (kind, type, payload, created_at) VALUES
		('backchannel_logout', 'logout_token', '{"client_id":"fresh","sub":"u1"}', now()),
		('backchannel_logout', 'logout_token', '{"client_id":"old","sub":"u1","sid":"s1"}', now() - interval '2 hours')`); err != nil {
		t.Fatal(err)
	}
	if n, err := w.ProcessOnce(ctx); err != nil || n != 2 {
		t.Fatalf("first pass: %d, %v", n, err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE outbox SET next_attempt_at = now()`); err != nil {
		t.Fatal(err)
	}
	if n, err := w.ProcessOnce(ctx); err != nil || n != 1 {
		t.Fatalf("second pass claimed %d rows (%v), want only the fresh one", n, err)
	}
	svc := accounts.New(db.Pool, nil, zap.NewNop(), accounts.Config{})
	failed, err := svc.ListLogoutDeliveries(ctx, accounts.LogoutFailed, "", 10)
	if err != nil || len(failed) != 1 || failed[0].ClientID != "old" || failed[0].SID != "s1" ||
		!strings.Contains(failed[0].LastError, "500") || failed[0].FailedAt == nil {
		t.Fatalf("failed: %+v, %v", failed, err)
	}
	pending, err := svc.ListLogoutDeliveries(ctx, accounts.LogoutPending, "fresh", 10)
	if err != nil || len(pending) != 1 || pending[0].Attempts != 2 || pending[0].NextAttemptAt == nil {
		t.Fatalf("pending: %+v, %v", pending, err)
	}
	if _, err := svc.ListLogoutDeliveries(ctx, "bogus", "", 10); !errors.Is(err, accounts.ErrBadStatus) {
		t.Errorf("bad status: %v", err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP authd_outbox_delivery_given_up_total Outbox rows no longer retried (back-channel logout notices older than AUTHD_BACKCHANNEL_LOGOUT_MAX_AGE), by kind.
# TYPE authd_outbox_delivery_given_up_total counter
authd_outbox_delivery_given_up_total{kind="backchannel_logout"} 1
authd_outbox_delivery_given_up_total{kind="mail"} 0
authd_outbox_delivery_given_up_total{kind="webhook"} 0
# HELP authd_outbox_failed Outbox rows given up and kept for inspection (back-channel logouts: GET /admin/v1/backchannel-logouts?status=failed), by kind; read from Postgres at scrape time.
# TYPE authd_outbox_failed gauge
authd_outbox_failed{kind="backchannel_logout"} 1
authd_outbox_failed{kind="mail"} 0
authd_outbox_failed{kind="webhook"} 0
`), "authd_outbox_delivery_given_up_total", "authd_outbox_failed"); err != nil {
		t.Error(err)
	}
	if calls.Load() != 3 {
		t.Errorf("sender called %d times, want 3", calls.Load())
	}
}
