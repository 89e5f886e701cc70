package main

import (
	"errors"

	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/accounts/passkey"
	"github.com/authd/authd/internal/config"
	"github.com/authd/authd/internal/ratelimit"
	loginui "github.com/authd/authd/login-ui"
)

// newPasskeyPages builds the passkey pages for the issuer and adds the
// passkey to the login's second-factor methods, or returns nil when the
// issuer's host is an IP address, which WebAuthn refuses as a relying
// party ID: passkeys are then off and the pages stay script-free.
func newPasskeyPages(cfg *config.Config, ui *loginui.UI, accts *accounts.Service, login *loginui.Login, limit *ratelimit.Limiter, log *zap.Logger) (*loginui.PasskeyPages, error) {
	svc, err := passkey.New(passkey.Config{Issuer: cfg.Issuer}, accts)
	if errors.Is(err, passkey.ErrUnavailable) {
		log.Warn("passkeys are off: the issuer's host is an IP address, which cannot be a WebAuthn relying party ID", zap.String("issuer", cfg.Issuer))
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ui.EnablePasskeys()
	accts.AddFactor(svc.Factor(accts))
	return &loginui.PasskeyPages{UI: ui, Accounts: accts, Passkeys: svc, Limit: limit, Log: log, Login: login}, nil
}
