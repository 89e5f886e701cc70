// Package reqctx carries per-request facts through a context: the request id,
// the request-scoped logger and the client's address and agent. It holds
// nothing else.
package reqctx

import (
	"context"

	"go.uber.org/zap"
)

// facts are all of a request's facts under one context key, so the
// per-request middleware adds one context value, not three.
type facts struct {
	id     string
	log    *zap.Logger
	client Client
}

type factsKey struct{}

func factsOf(ctx context.Context) facts {
	if f, ok := ctx.Value(factsKey{}).(*facts); ok {
		return *f
	}
	return facts{}
}

func with(ctx context.Context, f facts) context.Context {
	return context.WithValue(ctx, factsKey{}, &f)
}

// WithRequest returns ctx carrying the request id, the request-scoped logger
// and the client at once (what the HTTP middleware sets on every request).
func WithRequest(ctx context.Context, id string, l *zap.Logger, c Client) context.Context {
	return with(ctx, facts{id: id, log: l, client: c})
}

// WithRequestID returns ctx carrying the request id.
func WithRequestID(ctx context.Context, id string) context.Context {
	f := factsOf(ctx)
	f.id = id
	return with(ctx, f)
}

// RequestID returns the request id, or "" outside a request.
func RequestID(ctx context.Context) string { return factsOf(ctx).id }

// Logger returns the request-scoped logger, or a no-op logger.
func Logger(ctx context.Context) *zap.Logger {
	if l := factsOf(ctx).log; l != nil {
		return l
	}
	return zap.NewNop()
}

// Client is who sent the request, as seen by the server.
type Client struct {
	IP        string
	UserAgent string
}

// WithClient returns ctx carrying the request's client address and agent.
func WithClient(ctx context.Context, c Client) context.Context {
	f := factsOf(ctx)
	f.client = c
	return with(ctx, f)
}

// ClientOf returns the request's client, or a zero Client outside a request.
func ClientOf(ctx context.Context) Client { return factsOf(ctx).client }
