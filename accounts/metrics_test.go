package accounts_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/storage/storagetest"
)

// TestMetrics_ScrapeTimeGaugesReadPostgres checks the outbox depth and
// active-session gauges against rows written by the service itself, and
// that the counters lint clean.
func TestMetrics_ScrapeTimeGaugesReadPostgres(t *testing.T) {
	ctx := context.Background()
	db := storagetest.NewDB(t)
	reg := prometheus.NewPedanticRegistry()
	m, err := accounts.NewMetrics(reg, db.Pool, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	h, err := accounts.NewPasswordHasher("bcrypt", 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	svc := accounts.New(db.Pool, h, zap.NewNop(), accounts.Config{Metrics: m, Webhooks: true})

	u, err := svc.Register(ctx, accounts.Registration{Email: "ann@example.com", Password: "a fine long password"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CreateSession(ctx, u.ID, "test", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	revoked, _, err := svc.CreateSession(ctx, u.ID, "test", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.RevokeSessionByToken(ctx, revoked); err != nil {
		t.Fatal(err)
	}

	// Registration queued one verification mail and one user.registered
	// event; nothing delivers them here.
	want := `
# HELP authd_outbox_pending Outbox rows not yet delivered and still retried (mail, webhook events, back-channel logouts), by kind; read from Postgres at scrape time.
# TYPE authd_outbox_pending gauge
authd_outbox_pending{kind="backchannel_logout"} 0
authd_outbox_pending{kind="mail"} 1
authd_outbox_pending{kind="webhook"} 1
# HELP authd_sessions_active Browser sessions neither expired nor revoked; read from Postgres at scrape time.
# TYPE authd_sessions_active gauge
authd_sessions_active 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "authd_outbox_pending", "authd_sessions_active"); err != nil {
		t.Error(err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP authd_registrations_total Self-service registrations by outcome: created, email_taken, invalid, error.
# TYPE authd_registrations_total counter
authd_registrations_total{outcome="created"} 1
authd_registrations_total{outcome="email_taken"} 0
authd_registrations_total{outcome="error"} 0
authd_registrations_total{outcome="invalid"} 0
`), "authd_registrations_total"); err != nil {
		t.Error(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// TestMetrics_NilRecordsNothing: a service or worker without metrics works.
func TestMetrics_NilRecordsNothing(t *testing.T) {
	var m *accounts.Metrics
	m.Login(accounts.LoginRateLimited) // must not panic
	svc, _ := MustServiceCfg(t, accounts.Config{})
	if svc.Metrics() != nil {
		t.Fatal("Metrics() should be nil when none were configured")
	}
	if _, err := svc.Authenticate(context.Background(), "nobody@example.com", "whatever password"); err == nil {
		t.Fatal("unknown user authenticated")
	}
}
