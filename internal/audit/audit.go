// Package audit appends security-relevant events to the audit_events table in
// the caller's transaction, and mirrors them to the "audit" zap logger.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"go.uber.org/zap"

	"github.com/authd/authd/internal/authn"
	"github.com/authd/authd/internal/clientip"
	"github.com/authd/authd/internal/reqctx"
	"github.com/authd/authd/storage"
)

// Actor types.
const (
	ActorUser      = "user"
	ActorClient    = "client"
	ActorAdmin     = "admin"
	ActorSystem    = "system"
	ActorAnonymous = "anonymous"
)

// Event is one audit record. Details must never hold secrets.
type Event struct {
	Type       string
	ActorType  string
	ActorID    string
	TargetType string
	TargetID   string
	Failed     bool
	RequestID  string
	IP         string
	UserAgent  string
	Details    map[string]any
}

// FromRequest fills the request id, client IP and user agent of e from r.
func (e Event) FromRequest(r *http.Request) Event {
	e.RequestID = reqctx.RequestID(r.Context())
	e.IP = clientip.Of(r)
	e.UserAgent = r.UserAgent()
	if len(e.UserAgent) > 512 {
		e.UserAgent = e.UserAgent[:512]
	}
	return e
}

// Record appends e using q (a transaction, so the record commits with the
// change it describes) and logs it to the audit logger.
func Record(ctx context.Context, q storage.Querier, log *zap.Logger, e Event) error {
	e = e.FromContext(ctx)
	row, err := e.row()
	if err != nil {
		return err
	}
	if _, err := q.Exec(ctx, `INSERT INTO audit_events (`+columns+`) VALUES (`+storage.Params(0, len(row))+`)`, row...); err != nil {
		return fmt.Errorf("audit: record %s: %w", e.Type, err)
	}
	mirror(log, e)
	return nil
}

// columns are the audit_events columns an event fills, in row's order.
const columns = `type, actor_type, actor_id, target_type, target_id, outcome, request_id, ip, user_agent, details`

// row is e's values for columns.
func (e Event) row() ([]any, error) {
	details := []byte("{}")
	if len(e.Details) > 0 {
		var err error
		if details, err = json.Marshal(e.Details); err != nil {
			return nil, fmt.Errorf("audit: encode details of %s: %w", e.Type, err)
		}
	}
	return []any{e.Type, e.ActorType, e.ActorID, e.TargetType, e.TargetID, outcomeOf(e), e.RequestID, e.IP, e.UserAgent, details}, nil
}

func outcomeOf(e Event) string {
	if e.Failed {
		return "failure"
	}
	return "success"
}

// mirror logs a written event to the audit logger; a nil log skips it.
func mirror(log *zap.Logger, e Event) {
	if log == nil {
		return
	}
	log.Named("audit").Info(e.Type,
		zap.String("actor_type", e.ActorType), zap.String("actor_id", e.ActorID),
		zap.String("target_type", e.TargetType), zap.String("target_id", e.TargetID),
		zap.String("outcome", outcomeOf(e)), zap.String("request_id", e.RequestID), zap.String("ip", e.IP))
}

// AdminOrigin is the actor and request facts of an admin API call: the admin
// user behind the bearer token, or the client of a client-credentials token.
func AdminOrigin(r *http.Request) Event {
	e := Event{ActorType: ActorAdmin}
	if p := authn.FromContext(r.Context()); p != nil {
		if p.IsUser() {
			e.ActorID = p.UserID
		} else {
			e.ActorType, e.ActorID = ActorClient, p.ClientID
		}
	}
	return e.FromRequest(r)
}
