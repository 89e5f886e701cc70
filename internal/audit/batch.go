package audit

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	"github.com/authd/authd/internal/reqctx"
	"github.com/authd/authd/storage"
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
	if len(events) == 0 {
		return nil
	}
	written := make([]Event, len(events))
	var args []any
	for i, e := range events {
		if e.ActorType == "" {
			e.ActorType = ActorSystem
		}
		row, err := e.row()
		if err != nil {
			return err
		}
		written[i] = e
		args = append(args, row...)
	}
	b.Queue(`INSERT INTO audit_events (`+columns+`) VALUES `+storage.Values(len(events), len(args)/len(events)), args...).
		Exec(func(pgconn.CommandTag) error {
			for _, e := range written {
				mirror(log, e)
			}
			return nil
		})
	return nil
}
