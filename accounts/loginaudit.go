package accounts

import (
	"context"
	"errors"
	"maps"

	"go.uber.org/zap"

	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/internal/reqctx"
)

// RecordLogin writes the user.login audit event for a password login that
// Authenticate decided: the hosted form and the password grant alike. u and
// err are what Authenticate returned; origin carries the request facts and
// any details of the caller. A success is the user's; a throttled attempt,
// bad credentials or a disabled user are anonymous failures (which account
// was tried is not logged). An address no account can have is not recorded
// (a megabyte "email" must not become an audit line), nor an error that
// decided nothing. The event is best effort: a failure to write it is
// logged, never returned, as the login itself stands.
func (s *Service) RecordLogin(ctx context.Context, origin audit.Event, u *User, err error) {
	e := origin
	e.Type = "user.login"
	var throttled *ThrottledError
	switch {
	case err == nil && u != nil:
		e.ActorType, e.ActorID, e.TargetType, e.TargetID = audit.ActorUser, u.ID, "user", u.ID
	case errors.As(err, &throttled):
		e.ActorType, e.Failed = audit.ActorAnonymous, true
		e.Details = maps.Clone(e.Details)
		if e.Details == nil {
			e.Details = map[string]any{}
		}
		e.Details["reason"] = "throttled"
	case errors.Is(err, ErrInvalidCredentials), errors.Is(err, ErrUserDisabled):
		e.ActorType, e.Failed = audit.ActorAnonymous, true
	default:
		return
	}
	s.Audit(ctx, e)
}

// Audit records e, best effort: the pages' events (logins, second factors,
// passkeys, upstream logins) describe what already happened, so a failure
// to write one is logged, never returned.
func (s *Service) Audit(ctx context.Context, e audit.Event) {
	if err := audit.Record(ctx, s.pool, s.log, e); err != nil {
		reqctx.Logger(ctx).Warn("audit", zap.String("event", e.Type), zap.Error(err))
	}
}
