// Package reqctx carries per-request facts through a context: the request id
// and the request-scoped logger. It holds nothing else.
package reqctx

import (
	"context"

	"go.uber.org/zap"
)

type idKey struct{}
type logKey struct{}

// WithRequestID returns ctx carrying the request id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, idKey{}, id)
}

// RequestID returns the request id, or "" outside a request.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(idKey{}).(string)
	return id
}

// WithLogger returns ctx carrying a request-scoped logger.
func WithLogger(ctx context.Context, l *zap.Logger) context.Context {
	return context.WithValue(ctx, logKey{}, l)
}

// Logger returns the request-scoped logger, or a no-op logger.
func Logger(ctx context.Context) *zap.Logger {
	if l, ok := ctx.Value(logKey{}).(*zap.Logger); ok {
		return l
	}
	return zap.NewNop()
}

type clientKey struct{}

// Client is who sent the request, as seen by the server.
type Client struct {
	IP        string
	UserAgent string
}

// WithClient returns ctx carrying the request's client address and agent.
func WithClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

// ClientOf returns the request's client, or a zero Client outside a request.
func ClientOf(ctx context.Context) Client {
	c, _ := ctx.Value(clientKey{}).(Client)
	return c
}
