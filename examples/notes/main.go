// Command notes is the example service of the integration kit: a tiny notes
// API protected by authd access tokens through resource. Reading
// needs scope notes:read; writing needs role editor and costs the user one
// credit, charged with the service's own client credentials.
//
// Configuration (environment):
//
//	AUTHD_ISSUER         authd's issuer URL (required)
//	NOTES_AUDIENCE       the aud tokens must carry (default urn:authd:notes)
//	NOTES_CLIENT_ID      the service's client (client_credentials, scope credits:charge)
//	NOTES_CLIENT_SECRET
//	NOTES_LISTEN         listen address (default 127.0.0.1:8090)
//	NOTES_APP_CLIENT_ID  the app whose users' logouts the service honours: that
//	                     client's backchannel_logout_uri is <this service>/backchannel-logout
//	                     (OIDC Back-Channel Logout); empty: none
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if err := run(context.Background(), os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "notes:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	cfg := Config{
		Issuer:       getenv("AUTHD_ISSUER"),
		Audience:     getenv("NOTES_AUDIENCE"),
		ClientID:     getenv("NOTES_CLIENT_ID"),
		ClientSecret: getenv("NOTES_CLIENT_SECRET"),
		AppClientID:  getenv("NOTES_APP_CLIENT_ID"),
	}
	addr := getenv("NOTES_LISTEN")
	if addr == "" {
		addr = "127.0.0.1:8090"
	}
	h, err := New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Fail at start-up, not at the first request, if authd is unreachable.
	if err := h.verifier.Prefetch(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	slog.Info("notes listening", "addr", ln.Addr().String(), "issuer", cfg.Issuer)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
