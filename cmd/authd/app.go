package main

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/accounts/mail"
	"github.com/authd/authd/federation"
	"github.com/authd/authd/internal/authn"
	"github.com/authd/authd/internal/httpx"
	"github.com/authd/authd/internal/openapi"
	"github.com/authd/authd/internal/problem"
	"github.com/authd/authd/ledger"
	loginui "github.com/authd/authd/login-ui"
	"github.com/authd/authd/oauth"
	"github.com/authd/authd/oauth/clients"
	"github.com/authd/authd/oauth/keys"
	"github.com/authd/authd/storage/fositestore"
)

// app is the wired application: the HTTP handler and its background workers.
type app struct {
	handler http.Handler
	// router holds the routes under handler's middleware, for tests that
	// walk them (openapi_test.go).
	router *mux.Router
	// policies is every authd API route's policy, for the test that walks
	// the router.
	policies *authn.Table
	wg       sync.WaitGroup
	closers  []func()

	accounts *accounts.Service
	provider *oauth.Provider
	keys     *keys.Manager
	store    *fositestore.Store
	worker   *accounts.Worker
	// upstreams is the registry of upstream identity providers.
	upstreams *federation.Registry
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

// upstreamRegistry is the registry of upstream identity providers, whose
// client secrets are sealed under a key derived from AUTHD_SECRETS_KEY (the
// server and the CLI must derive the same one).
func upstreamRegistry(root []byte, pool *pgxpool.Pool, log *zap.Logger) (*federation.Registry, error) {
	secrets, err := accounts.NewLinkSealer(deriveKey(root, "upstream client secrets"))
	if err != nil {
		return nil, err
	}
	return federation.NewRegistry(pool, secrets, log.Named("federation")), nil
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
		DefaultRole:        cfg.DefaultRole,
		BaseURL:            cfg.Issuer,
		Webhooks:           cfg.WebhookURL != "",
		Revoker:            a.store,
		Logouts:            oauth.BackchannelAudience{},
		Links:              links,
		Metrics:            accountsMetrics,
		SessionIdleTimeout: cfg.SessionIdleTimeout,
		SessionMaxAge:      cfg.SessionMaxAge,
		MFARequiredRoles:   cfg.MFARequiredRoles,
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
	// Upstream identity providers: the registry (client secrets sealed at
	// rest) and the logins through them.
	if a.upstreams, err = upstreamRegistry(cfg.Key(), pool, log); err != nil {
		return nil, err
	}
	flowCookies, err := accounts.NewLinkSealer(deriveKey(cfg.Key(), "upstream login cookies"))
	if err != nil {
		return nil, err
	}
	fed := federation.New(a.upstreams, a.accounts, ui, flowCookies, log.Named("federation"), federation.Config{
		BaseURL: cfg.Issuer, Timeout: cfg.UpstreamTimeout, Limit: limits.Login,
	})
	a.provider, err = oauth.New(oauth.Config{
		Issuer:             cfg.Issuer,
		APIAudience:        cfg.APIAudienceOrIssuer(),
		AccessTokenTTL:     cfg.AccessTokenTTL,
		RefreshTokenTTL:    cfg.RefreshTokenTTL,
		IDTokenTTL:         cfg.IDTokenTTL,
		AuthCodeTTL:        cfg.AuthCodeTTL,
		RefreshReuseWindow: cfg.RefreshReuseWindow,
		AccessTokenAlg:     cfg.AccessTokenAlg,
		SecretsKey:         cfg.Key(),
		Dev:                cfg.Dev(),
		PasswordGrantLimit: limits.PasswordGrant,
		PARTTL:             cfg.PARTTL,
		RequirePAR:         cfg.RequirePAR,
	}, pool, a.store, a.keys, a.accounts, ui, log, rt.reg)
	if err != nil {
		return nil, err
	}

	ledgerHandler, err := ledger.NewHandler(pool, log, rt.reg, ledger.WithCapSource(chargeCaps{a.provider.Clients()}))
	if err != nil {
		return nil, err
	}
	accountsAPI := accounts.NewHandler(a.accounts, log, accounts.HandlerConfig{Limits: limits, PasswordGrant: a.provider})
	pages := &loginui.AccountPages{UI: ui, Accounts: a.accounts, Limits: limits, Log: log,
		Credits: ledgerHandler.Ledger(), Apps: a.provider, Identities: fed}
	// Every login finishes in login (the second factor and its policy have
	// one home there); passkey and upstream logins are handed to it too.
	login := &loginui.Login{UI: ui, Accounts: a.accounts, Limit: limits.Login, Requirements: a.provider, Upstreams: fed}
	passkeyPages, err := newPasskeyPages(cfg, ui, a.accounts, login, limits.Login, log)
	if err != nil {
		return nil, err
	}
	if passkeyPages != nil {
		pages.Passkeys = passkeyPages
	}

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
		Logouts: a.provider.BackchannelSender(nil), LogoutMaxAge: cfg.BackchannelLogoutMaxAge,
	})
	if err != nil {
		return nil, err
	}
	a.goBackground(ctx, a.worker.Run)
	a.goBackground(ctx, func(ctx context.Context) { purgeLoop(ctx, a, cfg.PurgeInterval, log.Named("purge")) })

	r := mux.NewRouter()
	r.Use(httpx.TagRoute)
	r.NotFoundHandler = notFound(ui)
	r.MethodNotAllowedHandler = http.HandlerFunc(methodNotAllowed)
	r.HandleFunc("/healthz", httpx.Healthz).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/readyz", httpx.Readyz(pool, cfg.DBAcquireTimeout)).Methods(http.MethodGet, http.MethodHead)
	if cfg.MetricsListen == "" {
		r.Handle("/metrics", httpx.MetricsHandler(rt.reg)).Methods(http.MethodGet)
	}
	r.PathPrefix("/static/").Handler(loginui.Static())

	a.provider.Mount(r)
	login.Mount(r)
	pages.MountPages(r)
	fed.Mount(r, login)
	if passkeyPages != nil {
		passkeyPages.Mount(r)
	}
	// The admin console: the admin API's tasks as hosted pages.
	(&loginui.Console{UI: ui, Accounts: a.accounts, Ledger: ledgerHandler.Ledger(), Keys: a.keys, Log: log, Apps: a.provider,
		Clients: consoleClients{clients.Admin{Registry: a.provider.Clients(), Log: log}}}).Mount(r)

	// authd's own APIs: every route is registered with its policy through
	// an authn.Router, enforced by the guard (policy_test.go walks them).
	a.policies = authn.NewTable()
	guard := &authn.Guard{Verifier: a.provider, Audience: cfg.APIAudienceOrIssuer(), Clients: a.provider}
	a.provider.MountUserinfo(authn.NewRouter(r, &authn.Guard{Verifier: a.provider, Audience: cfg.APIAudienceOrIssuer(),
		Clients: a.provider, Deny: a.provider.DenyBearer}, a.policies))
	api := authn.NewRouter(r.PathPrefix("/api/v1").Subrouter(), guard, a.policies)
	admin := authn.NewRouter(r.PathPrefix("/admin/v1").Subrouter(), guard, a.policies)
	accountsAPI.MountPublicAPI(api)
	api.Handle(http.MethodGet, "/openapi.json", authn.Policy{Public: true}, openapi.PublicHandler())
	accountsAPI.MountUserAPI(api)
	ledgerHandler.Mount(api, admin)
	accounts.NewAdminHandler(a.accounts, log).Mount(admin)
	clients.NewAdminHandler(a.provider.Clients(), log).Mount(admin)
	keys.NewAdminHandler(a.keys, log).Mount(admin)
	federation.NewAdminHandler(a.upstreams, cfg.Issuer).Mount(admin)
	admin.Handle(http.MethodGet, "/openapi.json", authn.Policy{Callers: authn.Admin}, openapi.AdminHandler())
	a.router = r

	if rt.dev != nil {
		if err := mountDev(ctx, r, rt, a); err != nil {
			return nil, err
		}
	}

	a.handler = httpx.ObserveBehind(log, httpx.NewMetrics(rt.reg), cfg.ClientResolver())(
		httpx.Deadline(cfg.RequestTimeout)(httpx.CORS(cfg.CORSOrigins)(
			httpx.SecureHeaders(!cfg.Dev())(
				httpx.LimitBody(maxBody)(r)))))
	return a, nil
}

// purgeLoop keeps the token and accounts tables bounded: every interval
// (AUTHD_PURGE_INTERVAL) it deletes expired tokens, sessions and delivered
// outbox rows; the work is idempotent, so every replica may do it.
func purgeLoop(ctx context.Context, a *app, interval time.Duration, log *zap.Logger) {
	t := time.NewTicker(interval)
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

// notFound answers an unknown path: a hosted HTML page to a browser (a
// navigation that accepts text/html), problem+json to everything else.
func notFound(ui *loginui.UI) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && strings.Contains(r.Header.Get("Accept"), "text/html") {
			ui.RenderError(r.Context(), w, http.StatusNotFound, "Page not found", loginui.ErrorData{
				Code: "not_found", Message: "There is no page at this address."})
			return
		}
		problem.Write(w, r, problem.ErrNotFound)
	})
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	problem.Write(w, r, problem.ErrMethodNotAllowed)
}

// chargeCaps gives the ledger the charge caps registered on each client.
type chargeCaps struct{ clients *clients.Registry }

func (c chargeCaps) ChargeCaps(ctx context.Context, clientID string) (ledger.ChargeCaps, error) {
	perSpend, perUserDay, err := c.clients.ChargeCaps(ctx, clientID)
	return ledger.ChargeCaps{PerSpend: perSpend, PerUserPerDay: perUserDay}, err
}
