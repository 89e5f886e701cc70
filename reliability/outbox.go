package reliability

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// Peers are the outbox's far sides: a webhook receiver and an SMTP server.
type Peers struct {
	Hook   *WebhookReceiver
	SMTP   *SMTPServer
	Secret string
}

// NewPeers starts both, healthy.
func NewPeers() (*Peers, error) {
	secret := RandomID() + RandomID()
	hook, err := NewWebhookReceiver(secret)
	if err != nil {
		return nil, err
	}
	smtpSrv, err := NewSMTPServer()
	if err != nil {
		hook.Close()
		return nil, err
	}
	return &Peers{Hook: hook, SMTP: smtpSrv, Secret: secret}, nil
}

// Env is the server configuration pointing at the peers.
func (p *Peers) Env() []string {
	return []string{"AUTHD_WEBHOOK_URL=" + p.Hook.URL, "AUTHD_WEBHOOK_SECRET=" + p.Secret, "AUTHD_SMTP_URL=" + p.SMTP.URL()}
}

// Close stops both.
func (p *Peers) Close() {
	p.Hook.Close()
	p.SMTP.Close()
}

// SetModes sets the webhook and SMTP behaviour.
func (p *Peers) SetModes(hook, smtp Mode) {
	p.Hook.SetMode(hook)
	p.SMTP.SetMode(smtp)
}

// WaitDelivered waits until every outbox row in the database is marked
// delivered and its peer has accepted it at least once, then records the
// outbox columns of rep (duplicates are deliveries beyond the first). It
// returns false, with a Problem, on timeout.
func (p *Peers) WaitDelivered(ctx context.Context, dbURL string, timeout time.Duration, rep *Report) bool {
	var missing []string
	var counts OutboxCounts
	ok := WaitFor(ctx, timeout, func() bool {
		c, err := Outbox(ctx, dbURL, "")
		if err != nil || c.Pending > 0 {
			return false
		}
		counts = c
		missing = missing[:0]
		hooks, err1 := OutboxIDs(ctx, dbURL, "webhook")
		mails, err2 := OutboxIDs(ctx, dbURL, "mail")
		if err1 != nil || err2 != nil {
			return false
		}
		got, msgs := p.Hook.Deliveries(), p.SMTP.Messages()
		for _, id := range hooks {
			if got[id] == 0 {
				missing = append(missing, "webhook "+id)
			}
		}
		for _, id := range mails {
			if msgs["<"+id+"@authd>"] == 0 {
				missing = append(missing, "mail "+id)
			}
		}
		return len(missing) == 0
	})
	rep.Queued, rep.Delivered = counts.Queued, counts.Delivered
	dups := 0
	for _, n := range p.Hook.Deliveries() {
		dups += max(n-1, 0)
	}
	for _, n := range p.SMTP.Messages() {
		dups += max(n-1, 0)
	}
	rep.Dups = dups
	if bad := p.Hook.BadSignatures(); bad > 0 {
		rep.Problem("%d webhook deliveries had a bad signature", bad)
	}
	if !ok {
		c, _ := Outbox(ctx, dbURL, "")
		rep.Queued, rep.Delivered = c.Queued, c.Delivered
		rep.Problem("outbox not delivered within %s: %d of %d rows pending; not received: %s", timeout, c.Pending, c.Queued, firstN(missing, 5))
	}
	return ok
}

func firstN(s []string, n int) string {
	if len(s) <= n {
		return fmt.Sprint(s)
	}
	return fmt.Sprintf("%v and %d more", s[:n], len(s)-n)
}

// registerLoop signs up users named prefix-<random>@example.test until ctx
// ends, each from a fresh loopback address (the per-IP limit is not the
// subject here).
func registerLoop(ctx context.Context, rec *Recorder, base func(n int64) (string, string), prefix string, workers int) {
	c := NewClient(30*time.Second, true)
	reqCtx := context.WithoutCancel(ctx)
	var n atomic.Int64
	Loop(ctx, workers, func(context.Context, int) {
		name, url := base(n.Add(1))
		email := fmt.Sprintf("%s-%s@example.test", prefix, RandomID())
		start := time.Now()
		a := Register(reqCtx, c, url, email, "reliable "+RandomID())
		backoff(rec.Record("register", name, start, a, email, ""))
	})
}
