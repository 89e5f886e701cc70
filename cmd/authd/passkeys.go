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

// passkeyFactor builds the passkey ceremonies for the issuer and adds the
// passkey to accts' second-factor methods (the login's second step, the
// admin's factor reset, the server and the CLI alike). It returns nil when
// the issuer's host is an IP address, which WebAuthn refuses as a relying
// party ID: passkeys are then off.
func passkeyFactor(cfg *config.Config, accts *accounts.Service) (*passkey.Service, error) {
	svc, err := passkey.New(passkey.Config{Issuer: cfg.Issuer}, accts)
	if errors.Is(err, passkey.ErrUnavailable) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	accts.AddFactor(svc.Factor(accts))
	return svc, nil
}

// newPasskeyPages builds the passkey pages and the passkey second factor
// (passkeyFactor), or returns nil when passkeys are off: the pages then
// stay script-free.
func newPasskeyPages(cfg *config.Config, ui *loginui.UI, accts *accounts.Service, login *loginui.Login, limit *ratelimit.Limiter, log *zap.Logger) (*loginui.PasskeyPages, error) {
	svc, err := passkeyFactor(cfg, accts)
	if err != nil {
		return nil, err
	}
	if svc == nil {
		log.Warn("passkeys are off: the issuer's host is an IP address, which cannot be a WebAuthn relying party ID", zap.String("issuer", cfg.Issuer))
		return nil, nil
	}
	ui.EnablePasskeys()
	return &loginui.PasskeyPages{UI: ui, Accounts: accts, Passkeys: svc, Limit: limit, Log: log, Login: login}, nil
}
