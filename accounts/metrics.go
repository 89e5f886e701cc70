package accounts

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// LoginOutcome labels authd_logins_total.
type LoginOutcome string

// Login outcomes. RateLimited is counted by the callers that refuse an
// attempt per IP before Authenticate runs (the /login page, the password
// grant); Authenticate counts the others.
const (
	LoginSuccess            LoginOutcome = "success"
	LoginInvalidCredentials LoginOutcome = "invalid_credentials"
	LoginThrottled          LoginOutcome = "throttled"
	LoginRateLimited        LoginOutcome = "rate_limited"
	LoginDisabled           LoginOutcome = "disabled"
	LoginError              LoginOutcome = "error"
)

// Metrics are the accounts module's business metrics. Create them once per
// registry with NewMetrics and hand the same value to Config.Metrics and
// WorkerConfig.Metrics. A nil *Metrics records nothing.
type Metrics struct {
	logins           *prometheus.CounterVec   // outcome
	registrations    *prometheus.CounterVec   // outcome
	verifications    *prometheus.CounterVec   // stage
	resets           *prometheus.CounterVec   // stage
	delivery         *prometheus.HistogramVec // kind
	deliveryFailures *prometheus.CounterVec   // kind
	deliveryGiveUps  *prometheus.CounterVec   // kind
}

// outboxKinds are the values of the outbox.kind column (a CHECK constraint
// bounds them), pre-declared so every series exists from the first scrape.
func outboxKinds() []string { return []string{"mail", "webhook", OutboxBackchannelLogout} }

// NewMetrics registers the accounts metrics on reg (nil: unregistered). With a pool it also
// registers the scrape-time gauges authd_outbox_pending and
// authd_sessions_active, which read Postgres (cheaply, with a short
// timeout) on each scrape, so every replica reports the shared truth
// rather than its own view. log receives the gauges' query failures.
func NewMetrics(reg prometheus.Registerer, pool *pgxpool.Pool, log *zap.Logger) (*Metrics, error) {
	m := &Metrics{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authd_logins_total",
			Help: "Password logins (hosted /login page and password grant) by outcome: success, invalid_credentials, throttled, rate_limited, disabled, error.",
		}, []string{"outcome"}),
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authd_registrations_total",
			Help: "Self-service registrations by outcome: created, email_taken, invalid, error.",
		}, []string{"outcome"}),
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authd_email_verifications_total",
			Help: "Email verification links requested (queued for mail) and completed (link used).",
		}, []string{"stage"}),
		resets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authd_password_resets_total",
			Help: "Password resets: requested (forgot-password asked), sent (a link was queued), completed (password set with a link).",
		}, []string{"stage"}),
		delivery: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "authd_outbox_delivery_seconds",
			Help:    "Time from an outbox row's enqueue to its delivery, retries included, by kind.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		}, []string{"kind"}),
		deliveryFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authd_outbox_delivery_failures_total",
			Help: "Failed outbox delivery attempts (each is retried with backoff), by kind.",
		}, []string{"kind"}),
		deliveryGiveUps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authd_outbox_delivery_given_up_total",
			Help: "Outbox rows no longer retried (back-channel logout notices older than AUTHD_BACKCHANNEL_LOGOUT_MAX_AGE), by kind.",
		}, []string{"kind"}),
	}
	for _, o := range []LoginOutcome{LoginSuccess, LoginInvalidCredentials, LoginThrottled, LoginRateLimited, LoginDisabled, LoginError} {
		m.logins.WithLabelValues(string(o))
	}
	for _, o := range []string{"created", "email_taken", "invalid", "error"} {
		m.registrations.WithLabelValues(o)
	}
	for _, s := range []string{"requested", "completed"} {
		m.verifications.WithLabelValues(s)
	}
	for _, s := range []string{"requested", "sent", "completed"} {
		m.resets.WithLabelValues(s)
	}
	for _, k := range outboxKinds() {
		m.delivery.WithLabelValues(k)
		m.deliveryFailures.WithLabelValues(k)
		m.deliveryGiveUps.WithLabelValues(k)
	}
	if reg == nil {
		return m, nil // counted but not exported, like the other modules' metrics
	}
	cs := []prometheus.Collector{m.logins, m.registrations, m.verifications, m.resets, m.delivery, m.deliveryFailures, m.deliveryGiveUps}
	if pool != nil {
		if log == nil {
			log = zap.NewNop()
		}
		cs = append(cs, newStateCollector(pool, log))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Login counts one login attempt's outcome.
func (m *Metrics) Login(o LoginOutcome) {
	if m != nil {
		m.logins.WithLabelValues(string(o)).Inc()
	}
}

func (m *Metrics) loginResult(err error) {
	var thr *ThrottledError
	switch {
	case err == nil:
		m.Login(LoginSuccess)
	case errors.As(err, &thr):
		m.Login(LoginThrottled)
	case errors.Is(err, ErrUserDisabled):
		m.Login(LoginDisabled)
	case errors.Is(err, ErrInvalidCredentials), errors.Is(err, ErrInvalidEmail):
		m.Login(LoginInvalidCredentials)
	default:
		m.Login(LoginError)
	}
}

func (m *Metrics) registration(err error) {
	if m == nil {
		return
	}
	var pol *PolicyError
	outcome := "created"
	switch {
	case err == nil:
	case errors.Is(err, ErrEmailTaken):
		outcome = "email_taken"
	case errors.As(err, &pol), errors.Is(err, ErrInvalidEmail):
		outcome = "invalid"
	default:
		outcome = "error"
	}
	m.registrations.WithLabelValues(outcome).Inc()
}

func (m *Metrics) verification(stage string) {
	if m != nil {
		m.verifications.WithLabelValues(stage).Inc()
	}
}

func (m *Metrics) reset(stage string) {
	if m != nil {
		m.resets.WithLabelValues(stage).Inc()
	}
}

func (m *Metrics) delivered(kind string, d time.Duration) {
	if m != nil {
		m.delivery.WithLabelValues(kind).Observe(d.Seconds())
	}
}

func (m *Metrics) deliveryFailed(kind string) {
	if m != nil {
		m.deliveryFailures.WithLabelValues(kind).Inc()
	}
}

func (m *Metrics) deliveryAbandoned(kind string) {
	if m != nil {
		m.deliveryGiveUps.WithLabelValues(kind).Inc()
	}
}

// stateCollector reads the outbox depth and the active browser sessions at
// scrape time. Both queries are single aggregates (the outbox one over the
// partial index of undelivered rows); a slow or unreachable database costs
// a scrape at most stateTimeout and omits the two gauges rather than
// failing the whole /metrics page.
type stateCollector struct {
	pool           *pgxpool.Pool
	log            *zap.Logger
	outboxPending  *prometheus.Desc
	outboxFailed   *prometheus.Desc
	sessionsActive *prometheus.Desc
}

const stateTimeout = 2 * time.Second

func newStateCollector(pool *pgxpool.Pool, log *zap.Logger) *stateCollector {
	return &stateCollector{pool: pool, log: log,
		outboxPending: prometheus.NewDesc("authd_outbox_pending",
			"Outbox rows not yet delivered and still retried (mail, webhook events, back-channel logouts), by kind; read from Postgres at scrape time.", []string{"kind"}, nil),
		outboxFailed: prometheus.NewDesc("authd_outbox_failed",
			"Outbox rows given up and kept for inspection (back-channel logouts: GET /admin/v1/backchannel-logouts?status=failed), by kind; read from Postgres at scrape time.", []string{"kind"}, nil),
		sessionsActive: prometheus.NewDesc("authd_sessions_active",
			"Browser sessions neither expired nor revoked; read from Postgres at scrape time.", nil, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.outboxPending
	ch <- c.outboxFailed
	ch <- c.sessionsActive
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
	defer cancel()
	pending, failed := map[string]int64{}, map[string]int64{}
	for _, k := range outboxKinds() {
		pending[k], failed[k] = 0, 0
	}
	rows, err := c.pool.Query(ctx, `SELECT kind, count(*) FILTER (WHERE failed_at IS NULL), count(*) FILTER (WHERE failed_at IS NOT NULL)
		FROM outbox WHERE delivered_at IS NULL GROUP BY kind`)
	if err == nil {
		for rows.Next() {
			var k string
			var n, f int64
			if err = rows.Scan(&k, &n, &f); err != nil {
				break
			}
			pending[k], failed[k] = n, f
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if err != nil {
		c.log.Debug("metrics: outbox depth", zap.Error(err))
	} else {
		for k, n := range pending {
			ch <- prometheus.MustNewConstMetric(c.outboxPending, prometheus.GaugeValue, float64(n), k)
			ch <- prometheus.MustNewConstMetric(c.outboxFailed, prometheus.GaugeValue, float64(failed[k]), k)
		}
	}
	var active int64
	err = c.pool.QueryRow(ctx, `SELECT count(*) FROM browser_sessions WHERE revoked_at IS NULL AND expires_at > now()`).Scan(&active)
	if err != nil {
		c.log.Debug("metrics: active sessions", zap.Error(err))
		return
	}
	ch <- prometheus.MustNewConstMetric(c.sessionsActive, prometheus.GaugeValue, float64(active))
}
