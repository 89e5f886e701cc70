package main

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/accounts/mail"
	"github.com/authd/authd/internal/authn"
	"github.com/authd/authd/internal/httpx"
	"github.com/authd/authd/internal/openapi"
	"github.com/authd/authd/internal/problem"
	"github.com/authd/authd/ledger"
	loginui "github.com/authd/authd/login-ui"
	"github.com/authd/authd/oauth"
	"github.com/authd/authd/oauth/keys"
	"github.com/authd/authd/storage/fositestore"
)

// app is the wired application: the HTTP handler and its background workers.
type app struct {
	handler http.Handler
	// router holds the routes under handler's middleware, for tests that
	// walk them (openapi_test.go).
	router  *mux.Router
	wg      sync.WaitGroup
	closers []func()

	accounts *accounts.Service
	provider *oauth.Provider
	keys     *keys.Manager
	store    *fositestore.Store
	worker   *accounts.Worker
}

// goBackground runs fn until ctx ends; wait() waits for all of them.
func (a *app) goBackground(ctx context.Context, fn func(ctx context.Context)) {
	a.wg.Add(1)
	go func() { defer a.wg.Done(); fn(ctx) }()
}

func (a *app) wait() { a.wg.Wait() }

func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

// maxBody bounds every request body (forms and JSON alike).
const maxBody = 1 << 20

// deriveKey derives an independent key for purpose from AUTHD_SECRETS_KEY.
func deriveKey(root []byte, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, root, nil, "authd "+purpose, 32)
	if err != nil {
		panic(fmt.Sprintf("hkdf: %v", err)) // only on invalid lengths, which are constant here
	}
	return k
}

// buildApp wires every module onto one router. ctx lives as long as the
// background workers should.
func buildApp(ctx context.Context, rt *runtime) (*app, error) {
	cfg, log, pool := rt.cfg, rt.log, rt.pool
	a := &app{}

	hasher, err := accounts.NewPasswordHasher(cfg.PasswordHash, cfg.BcryptCost, 0)
	if err != nil {
		return nil, err
	}
	a.store = fositestore.New(pool, fositestore.Options{Log: log.Named("fositestore")})
	// Clients are cached only while this replica listens for changes to them.
	a.goBackground(ctx, a.store.WatchClients)
	links, err := accounts.NewLinkSealer(deriveKey(cfg.Key(), "outbox links"))
	if err != nil {
		return nil, err
	}
	accountsMetrics, err := accounts.NewMetrics(rt.reg, pool, log.Named("metrics"))
	if err != nil {
		return nil, err
	}
	a.accounts = accounts.New(pool, hasher, log, accounts.Config{
		DefaultRole: cfg.DefaultRole,
		BaseURL:     cfg.Issuer,
		Webhooks:    cfg.WebhookURL != "",
		Revoker:     a.store,
		Links:       links,
		Metrics:     accountsMetrics,
	})
	// Introspection and bearer tokens read users' roles and disabled flag
	// from a cache, kept only while this replica listens for changes.
	a.goBackground(ctx, a.accounts.WatchUsers)

	a.keys, err = keys.NewManager(pool, cfg.Key(), keys.Config{
		RotationPeriod: cfg.KeyRotationPeriod,
		Prepublish:     cfg.KeyPrepublish,
		// A retired key stays published until every token it signed expired.
		RetainAfter: max(cfg.AccessTokenTTL, cfg.IDTokenTTL) + 5*time.Minute,
	}, log.Named("keys"))
	if err != nil {
		return nil, err
	}
	if err := a.keys.Start(ctx); err != nil {
		return nil, err
	}
	// The key loop is a background worker: shutdown waits for it like the others.
	a.wg.Add(1)
	go func() { defer a.wg.Done(); <-a.keys.Done() }()

	// One set of per-IP limiters for the pages, the JSON API and the token
	// endpoint alike, so a client cannot multiply its budget by switching.
	limits := accounts.DefaultLimits()
	ui, err := loginui.New(deriveKey(cfg.Key(), "csrf"), !cfg.Dev(), log)
	if err != nil {
		return nil, err
	}
	a.provider, err = oauth.New(oauth.Config{
		Issuer:             cfg.Issuer,
		AccessTokenTTL:     cfg.AccessTokenTTL,
		RefreshTokenTTL:    cfg.RefreshTokenTTL,
		IDTokenTTL:         cfg.IDTokenTTL,
		AuthCodeTTL:        cfg.AuthCodeTTL,
		RefreshReuseWindow: cfg.RefreshReuseWindow,
		AccessTokenAlg:     cfg.AccessTokenAlg,
		SecretsKey:         cfg.Key(),
		Dev:                cfg.Dev(),
		LoginLimit:         limits.Login,
		PasswordGrantLimit: limits.PasswordGrant,
	}, pool, a.store, a.keys, a.accounts, ui, log, rt.reg)
	if err != nil {
		return nil, err
	}

	ledgerHandler, err := ledger.NewHandler(pool, log, rt.reg)
	if err != nil {
		return nil, err
	}
	accountsAPI := accounts.NewHandler(a.accounts, log, accounts.HandlerConfig{Limits: limits, PasswordGrant: a.provider})
	pages := &loginui.AccountPages{UI: ui, Accounts: a.accounts, Limits: limits, Log: log}

	// Outbox delivery: webhooks and mail.
	var mailer accounts.Mailer
	smtpURL := cfg.SMTPURL
	if smtpURL == "" && rt.dev != nil && rt.dev.catcher != nil {
		smtpURL = "smtp://" + rt.dev.catcher.Addr() + "?starttls=false"
	}
	if smtpURL != "" {
		s, err := mail.NewSender(mail.Config{URL: smtpURL, From: cfg.MailFrom})
		if err != nil {
			return nil, err
		}
		mailer = s
	}
	var tmpl *mail.Templates
	if cfg.MailTmplDir != "" {
		if tmpl, err = mail.LoadTemplates(cfg.MailTmplDir); err != nil {
			return nil, fmt.Errorf("AUTHD_MAIL_TEMPLATES_DIR: %w", err)
		}
	}
	a.worker, err = accounts.NewWorker(pool, log.Named("outbox"), accounts.WorkerConfig{
		WebhookURL: cfg.WebhookURL, WebhookSecret: cfg.WebhookSecret,
		Mailer: mailer, MailFrom: cfg.MailFrom, Templates: tmpl, Links: links,
		Metrics: accountsMetrics,
	})
	if err != nil {
		return nil, err
	}
	a.goBackground(ctx, a.worker.Run)
	a.goBackground(ctx, func(ctx context.Context) { purgeLoop(ctx, a, log.Named("purge")) })

	r := mux.NewRouter()
	r.Use(httpx.TagRoute)
	r.NotFoundHandler = http.HandlerFunc(notFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(methodNotAllowed)
	r.HandleFunc("/healthz", httpx.Healthz).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/readyz", httpx.Readyz(pool)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/metrics", httpx.MetricsHandler(rt.reg)).Methods(http.MethodGet)
	r.PathPrefix("/static/").Handler(loginui.Static())

	a.provider.Mount(r)
	pages.MountPages(r)

	requireToken := authn.Require(a.provider)
	api := r.PathPrefix("/api/v1").Subrouter()
	accountsAPI.MountPublicAPI(api)
	api.Handle("/openapi.json", openapi.PublicHandler()).Methods(http.MethodGet)
	userAPI := api.NewRoute().Subrouter()
	userAPI.Use(requireToken)
	accountsAPI.MountUserAPI(userAPI)
	admin := r.PathPrefix("/admin/v1").Subrouter()
	admin.Use(requireToken)
	ledgerHandler.Mount(userAPI, admin)

	// Admin API (issue 5): users, roles, audit log, clients, keys and the
	// OpenAPI document; every route requires an admin token.
	accounts.NewAdminHandler(a.accounts, log).Mount(admin)
	oauth.NewAdminHandler(a.provider.Clients(), a.keys, log).Mount(admin)
	admin.Handle("/openapi.json", authn.RequireAdmin(openapi.AdminHandler())).Methods(http.MethodGet)
	a.router = r

	if rt.dev != nil {
		if err := mountDev(ctx, r, rt, a); err != nil {
			return nil, err
		}
	}

	a.handler = httpx.Observe(log, httpx.NewMetrics(rt.reg))(
		httpx.CORS(cfg.CORSOrigins)(
			httpx.SecureHeaders(!cfg.Dev())(
				httpx.LimitBody(maxBody)(r))))
	return a, nil
}

// purgeInterval is how often expired tokens, sessions and delivered outbox
// rows are deleted; the work is idempotent, so every replica may do it.
const purgeInterval = 10 * time.Minute

// purgeLoop keeps the token and accounts tables bounded.
func purgeLoop(ctx context.Context, a *app, log *zap.Logger) {
	t := time.NewTicker(purgeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := a.store.DeleteExpired(ctx, time.Now())
		if err == nil {
			var m int64
			m, err = a.accounts.PurgeExpired(ctx)
			n += m
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("purge failed; retrying at the next interval", zap.Error(err))
			continue
		}
		log.Debug("purged expired rows", zap.Int64("rows", n))
	}
}

func notFound(w http.ResponseWriter, r *http.Request) { problem.Write(w, r, problem.ErrNotFound) }

func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	problem.Write(w, r, problem.New(http.StatusMethodNotAllowed, "method_not_allowed", "this method is not allowed on this resource"))
}
