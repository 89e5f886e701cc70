package audit

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	"github.com/authd/authd/internal/reqctx"
)

// FromContext fills what e lacks from ctx, as Record does: the system actor,
// the request id and the client's address and user agent. Callers that record
// several requests' events in one statement (QueueAll) call it with each
// event's own request context.
func (e Event) FromContext(ctx context.Context) Event {
	if e.ActorType == "" {
		e.ActorType = ActorSystem
	}
	if e.RequestID == "" {
		e.RequestID = reqctx.RequestID(ctx)
	}
	if e.IP == "" && e.UserAgent == "" {
		c := reqctx.ClientOf(ctx)
		e.IP, e.UserAgent = c.IP, c.UserAgent
	}
	return e
}

// QueueAll queues on b one INSERT appending all events (already completed
// with FromContext), so that they commit with the writes they describe in the
// same round trip; each is mirrored to the audit logger once the INSERT
// succeeded. Its error, if any, comes back from the batch's results.
func QueueAll(b *pgx.Batch, log *zap.Logger, events []Event) error {
	n := len(events)
	if n == 0 {
		return nil
	}
	types, actorTypes, actorIDs := make([]string, n), make([]string, n), make([]string, n)
	targetTypes, targetIDs, outcomes := make([]string, n), make([]string, n), make([]string, n)
	requestIDs, ips, agents := make([]string, n), make([]string, n), make([]string, n)
	details := make([]string, n)
	for i, e := range events {
		if e.ActorType == "" {
			e.ActorType = ActorSystem
		}
		d := "{}"
		if len(e.Details) > 0 {
			j, err := json.Marshal(e.Details)
			if err != nil {
				return fmt.Errorf("audit: encode details of %s: %w", e.Type, err)
			}
			d = string(j)
		}
		types[i], actorTypes[i], actorIDs[i] = e.Type, e.ActorType, e.ActorID
		targetTypes[i], targetIDs[i], outcomes[i] = e.TargetType, e.TargetID, outcomeOf(e)
		requestIDs[i], ips[i], agents[i], details[i] = e.RequestID, e.IP, e.UserAgent, d
	}
	b.Queue(`INSERT INTO audit_events
		(type, actor_type, actor_id, target_type, target_id, outcome, request_id, ip, user_agent, details)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::text[], $9::text[], $10::jsonb[])`,
		types, actorTypes, actorIDs, targetTypes, targetIDs, outcomes, requestIDs, ips, agents, details).
		Exec(func(pgconn.CommandTag) error {
			if log == nil {
				return nil
			}
			al := log.Named("audit")
			for i, e := range events {
				al.Info(e.Type,
					zap.String("actor_type", actorTypes[i]), zap.String("actor_id", e.ActorID),
					zap.String("target_type", e.TargetType), zap.String("target_id", e.TargetID),
					zap.String("outcome", outcomes[i]), zap.String("request_id", e.RequestID), zap.String("ip", e.IP))
			}
			return nil
		})
	return nil
}

func outcomeOf(e Event) string {
	if e.Failed {
		return "failure"
	}
	return "success"
}
