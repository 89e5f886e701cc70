package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts/mail"
)

// Mailer submits a built MIME message to one recipient; *mail.Sender is one.
type Mailer interface {
	Send(ctx context.Context, to string, msg []byte) error
}

// WorkerConfig configures the outbox Worker. Zero values pick the defaults.
type WorkerConfig struct {
	WebhookURL    string // AUTHD_WEBHOOK_URL; "" leaves webhook rows queued
	WebhookSecret string // AUTHD_WEBHOOK_SECRET, HMAC key of Authd-Signature
	// Mailer sends mail rows; nil leaves them queued.
	Mailer Mailer
	// MailFrom is the From header (AUTHD_MAIL_FROM).
	MailFrom string
	// Links opens links sealed by the Service (Config.Links).
	Links *LinkSealer
	// Templates renders mail; nil means the embedded ones.
	Templates  *mail.Templates
	HTTPClient *http.Client // 10s timeout
	// Batch is how many rows one claim takes (10).
	Batch int
	// Visibility is how long a claimed row stays invisible to other workers
	// (1m); it must exceed the longest delivery attempt, which is why the
	// HTTP and SMTP timeouts are shorter.
	Visibility time.Duration
	// PollInterval bounds the wait between scans when no notification comes
	// (2s); notifications make fresh rows go out at once.
	PollInterval time.Duration
	BackoffBase  time.Duration // first retry delay (1s), doubling per attempt
	BackoffMax   time.Duration // retry delay cap (10m)
	Now          func() time.Time
	// Metrics records delivery latency and failures; nil records nothing.
	Metrics *Metrics
	// Logouts sends back-channel logout notices; nil leaves them queued.
	Logouts LogoutSender
	// LogoutMaxAge is how long a logout notice is retried (24h,
	// AUTHD_BACKCHANNEL_LOGOUT_MAX_AGE); after it the row is marked failed.
	LogoutMaxAge time.Duration
}

// Worker delivers the outbox: webhook events and mail. Any number of workers
// may run, in one process or many; a row is delivered by one worker at a time
// (FOR UPDATE SKIP LOCKED plus a lease), at least once, retried with
// exponential backoff until it succeeds.
type Worker struct {
	pool  *pgxpool.Pool
	log   *zap.Logger
	cfg   WorkerConfig
	kinds []string
	nudge chan struct{}
}

// NewWorker returns a worker; start it with Run.
func NewWorker(pool *pgxpool.Pool, log *zap.Logger, cfg WorkerConfig) (*Worker, error) {
	if cfg.Templates == nil {
		t, err := mail.LoadTemplates("")
		if err != nil {
			return nil, err
		}
		cfg.Templates = t
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 10
	}
	if cfg.Visibility <= 0 {
		cfg.Visibility = time.Minute
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 2 * time.Second
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = time.Second
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 10 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LogoutMaxAge <= 0 {
		cfg.LogoutMaxAge = 24 * time.Hour
	}
	if log == nil {
		log = zap.NewNop()
	}
	w := &Worker{pool: pool, log: log.Named("outbox"), cfg: cfg, nudge: make(chan struct{}, 1)}
	if cfg.WebhookURL != "" {
		w.kinds = append(w.kinds, "webhook")
	}
	if cfg.Mailer != nil {
		w.kinds = append(w.kinds, "mail")
	}
	if cfg.Logouts != nil {
		w.kinds = append(w.kinds, OutboxBackchannelLogout)
	}
	return w, nil
}

// Nudge wakes the worker to scan now (in-process shortcut; other replicas
// learn through LISTEN/NOTIFY).
func (w *Worker) Nudge() {
	select {
	case w.nudge <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends. It survives database outages: errors are
// logged and retried.
func (w *Worker) Run(ctx context.Context) {
	if len(w.kinds) == 0 {
		w.log.Warn("outbox worker has neither webhook URL nor mailer; nothing to deliver")
		<-ctx.Done()
		return
	}
	done := make(chan struct{})
	go func() { defer close(done); w.listen(ctx) }()
	defer func() { <-done }()
	errDelay := time.Duration(0)
	for ctx.Err() == nil {
		n, err := w.ProcessOnce(ctx)
		wait := w.cfg.PollInterval
		switch {
		case err != nil && ctx.Err() == nil:
			errDelay = min(max(2*errDelay, 100*time.Millisecond), 5*time.Second)
			w.log.Warn("outbox scan failed", zap.Error(err), zap.Duration("retry_in", errDelay))
			wait = errDelay
		case n == w.cfg.Batch:
			continue // more may be due
		default:
			errDelay = 0
			if d, ok := w.nextDue(ctx); ok {
				wait = min(max(d, 0), wait)
			}
		}
		if wait <= 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-w.nudge:
		case <-t.C:
		}
		t.Stop()
	}
}

// listen turns NOTIFY authd_outbox (sent by the insert trigger on commit)
// into nudges, on a dedicated connection outside the pool.
func (w *Worker) listen(ctx context.Context) {
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := func() error {
			conn, err := pgx.ConnectConfig(ctx, w.pool.Config().ConnConfig.Copy())
			if err != nil {
				return err
			}
			defer conn.Close(context.WithoutCancel(ctx))
			if _, err := conn.Exec(ctx, `LISTEN authd_outbox`); err != nil {
				return err
			}
			w.Nudge() // rows may have arrived while we were not listening
			delay = 100 * time.Millisecond
			for {
				if _, err := conn.WaitForNotification(ctx); err != nil {
					return err
				}
				w.Nudge()
			}
		}()
		if ctx.Err() != nil {
			return
		}
		w.log.Debug("outbox listener reconnecting", zap.Error(err))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		delay = min(2*delay, 5*time.Second)
	}
}

type outboxRow struct {
	id, kind, typ string
	payload       json.RawMessage
	createdAt     time.Time
	attempts      int
	lease         string
}

// ProcessOnce claims up to Batch due rows, delivers them and records the
// outcome. It returns how many rows it claimed.
func (w *Worker) ProcessOnce(ctx context.Context) (int, error) {
	rows, err := w.pool.Query(ctx, `WITH due AS (
			SELECT id FROM outbox
			WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now() AND kind = ANY($3)
			ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
		UPDATE outbox o SET next_attempt_at = now() + $2 * interval '1 millisecond',
			lease_id = gen_random_uuid(), attempts = o.attempts + 1
		FROM due WHERE o.id = due.id
		RETURNING o.id, o.kind, o.type, o.payload, o.created_at, o.attempts, o.lease_id`,
		w.cfg.Batch, w.cfg.Visibility.Milliseconds(), w.kinds)
	if err != nil {
		return 0, fmt.Errorf("accounts: claim outbox rows: %w", err)
	}
	claimed, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (outboxRow, error) {
		var r outboxRow
		err := row.Scan(&r.id, &r.kind, &r.typ, &r.payload, &r.createdAt, &r.attempts, &r.lease)
		return r, err
	})
	if err != nil {
		return 0, fmt.Errorf("accounts: claim outbox rows: %w", err)
	}
	for _, r := range claimed {
		// Each attempt must end well within the lease.
		dctx, cancel := context.WithTimeout(ctx, w.cfg.Visibility/2)
		derr := w.deliver(dctx, r)
		cancel()
		if derr != nil && ctx.Err() != nil {
			return len(claimed), ctx.Err() // shutting down: the lease expires and another worker retries
		}
		// Record the outcome even when shutting down, so a delivered row is
		// not delivered again.
		fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err := w.finish(fctx, r, derr)
		fcancel()
		if err != nil {
			return len(claimed), err
		}
	}
	return len(claimed), nil
}

func (w *Worker) deliver(ctx context.Context, r outboxRow) error {
	switch r.kind {
	case "webhook":
		return w.deliverWebhook(ctx, r)
	case "mail":
		return w.deliverMail(ctx, r)
	case OutboxBackchannelLogout:
		return w.deliverLogout(ctx, r)
	}
	return fmt.Errorf("unknown outbox kind %q", r.kind)
}

func (w *Worker) deliverMail(ctx context.Context, r outboxRow) error {
	var p mailPayload
	if err := json.Unmarshal(r.payload, &p); err != nil {
		return fmt.Errorf("mail payload: %w", err)
	}
	if p.SealedLink != "" {
		if w.cfg.Links == nil {
			return errors.New("mail payload has a sealed link but the worker has no LinkSealer")
		}
		link, err := w.cfg.Links.Open(p.SealedLink, p.To)
		if err != nil {
			return err
		}
		p.Data.Link = link
	}
	subject, text, html, err := w.cfg.Templates.Render(r.typ, p.Data)
	if err != nil {
		return err
	}
	msg, err := mail.Build(mail.Message{From: w.cfg.MailFrom, To: p.To, Subject: subject, Text: text, HTML: html, ID: r.id, Date: w.cfg.Now()})
	if err != nil {
		return err
	}
	return w.cfg.Mailer.Send(ctx, p.To, msg)
}

// finish records a delivery or schedules the retry. The lease id guards
// against a worker whose lease expired overwriting its successor's claim.
func (w *Worker) finish(ctx context.Context, r outboxRow, derr error) error {
	if derr == nil {
		// Delivered mail no longer needs its links, which hold live tokens.
		// The latency is measured on the database's clock at both ends.
		var secs float64
		err := w.pool.QueryRow(ctx, `UPDATE outbox SET delivered_at = now(), lease_id = NULL, last_error = '',
			payload = CASE WHEN kind = 'mail' THEN jsonb_build_object('to', payload->'to') ELSE payload END
			WHERE id = $1 AND lease_id = $2
			RETURNING EXTRACT(EPOCH FROM delivered_at - created_at)::float8`, r.id, r.lease).Scan(&secs)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			// Our lease expired and another worker owns the row: its outcome counts.
		case err != nil:
			return fmt.Errorf("accounts: mark outbox row delivered: %w", err)
		default:
			w.cfg.Metrics.delivered(r.kind, time.Duration(secs*float64(time.Second)))
		}
		w.log.Info("outbox row delivered", zap.String("id", r.id), zap.String("kind", r.kind), zap.String("type", r.typ), zap.Int("attempt", r.attempts))
		return nil
	}
	w.cfg.Metrics.deliveryFailed(r.kind)
	delay := w.backoff(r.attempts)
	msg := derr.Error()
	if len(msg) > 500 {
		msg = msg[:500]
	}
	// A logout notice stops mattering after a while (the relying party's
	// session has ended or been forgotten): past LogoutMaxAge it is given up
	// and stays listed as failed for the administrators.
	maxAge := time.Duration(0)
	if r.kind == OutboxBackchannelLogout {
		maxAge = w.cfg.LogoutMaxAge
	}
	var gaveUp bool
	err := w.pool.QueryRow(ctx, `UPDATE outbox SET next_attempt_at = now() + $3 * interval '1 millisecond', lease_id = NULL, last_error = $4,
			failed_at = CASE WHEN $5 > 0 AND created_at + $5 * interval '1 millisecond' <= now() THEN now() END
		WHERE id = $1 AND lease_id = $2 RETURNING failed_at IS NOT NULL`, r.id, r.lease, delay.Milliseconds(), msg, maxAge.Milliseconds()).Scan(&gaveUp)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil // our lease expired: the successor's outcome counts
	case err != nil:
		return fmt.Errorf("accounts: reschedule outbox row: %w", err)
	case gaveUp:
		w.cfg.Metrics.deliveryAbandoned(r.kind)
		w.log.Error("outbox delivery given up", zap.String("id", r.id), zap.String("kind", r.kind), zap.String("type", r.typ),
			zap.Int("attempt", r.attempts), zap.Error(derr))
		return nil
	}
	w.log.Warn("outbox delivery failed", zap.String("id", r.id), zap.String("kind", r.kind), zap.String("type", r.typ),
		zap.Int("attempt", r.attempts), zap.Duration("retry_in", delay), zap.Error(derr))
	return nil
}

// backoff is BackoffBase·2^(attempt-1), capped, with ±20% jitter so many
// rows failing together do not retry in lockstep.
func (w *Worker) backoff(attempt int) time.Duration {
	d := w.cfg.BackoffMax
	if attempt-1 < 30 {
		d = min(w.cfg.BackoffBase*time.Duration(1<<max(attempt-1, 0)), w.cfg.BackoffMax)
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// nextDue returns how long until the earliest undelivered row is due.
func (w *Worker) nextDue(ctx context.Context) (time.Duration, bool) {
	var secs *float64
	err := w.pool.QueryRow(ctx, `SELECT EXTRACT(EPOCH FROM min(next_attempt_at) - now())::float8 FROM outbox
		WHERE delivered_at IS NULL AND failed_at IS NULL AND kind = ANY($1)`, w.kinds).Scan(&secs)
	if err != nil || secs == nil {
		if err != nil && !errors.Is(err, context.Canceled) {
			w.log.Debug("outbox next due", zap.Error(err))
		}
		return 0, false
	}
	return time.Duration(*secs * float64(time.Second)), true
}
