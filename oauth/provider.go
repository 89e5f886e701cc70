package oauth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/oauth/clients"
	"github.com/authd/authd/storage/fositestore"
)

// Provider is the OAuth 2.0 / OIDC authorization server. Create it with New
// and mount its routes with Mount. It is safe for concurrent use.
type Provider struct {
	cfg      Config
	fcfg     *fosite.Config
	op       fosite.OAuth2Provider
	strategy oauth2.CoreStrategy
	store    *fositestore.Store
	pool     *pgxpool.Pool
	keys     KeySource
	atSigner *rotatingSigner
	idSigner *rotatingSigner
	accts    Accounts
	ui       Pages
	log      *zap.Logger
	// aead encrypts token responses cached for the refresh reuse window.
	aead    cipher.AEAD
	metrics *metrics
	// verified and introspected cache live access tokens for at most
	// TokenCacheTTL (tokencache.go).
	verified, introspected *tokenCache
}

// New composes the provider. keys is the
// signing-key manager (*keys.Manager), already started. reg may be nil.
func New(cfg Config, pool *pgxpool.Pool, store *fositestore.Store, keys KeySource, accts Accounts,
	ui Pages, log *zap.Logger, reg prometheus.Registerer) (*Provider, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if pool == nil || store == nil || keys == nil || accts == nil || ui == nil {
		return nil, errors.New("oauth: New needs a pool, a store, keys, accounts and a UI")
	}
	if log == nil {
		log = zap.NewNop()
	}
	block, err := aes.NewCipher(deriveKey(cfg.SecretsKey, "refresh-response"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	p := &Provider{cfg: cfg, store: store, pool: pool, keys: keys, accts: accts, ui: ui, log: log, aead: aead, metrics: m}
	p.fcfg = p.fositeConfig()
	p.verified, p.introspected = newTokenCache(store, cfg.Now), newTokenCache(store, cfg.Now)
	p.atSigner = &rotatingSigner{keys: keys, alg: cfg.AccessTokenAlg, algs: []string{cfg.AccessTokenAlg}}
	p.idSigner = &rotatingSigner{keys: keys, alg: "RS256", algs: []string{"RS256", "ES256"}}

	core := &oauth2.DefaultJWTStrategy{
		Signer:          p.atSigner,
		HMACSHAStrategy: compose.NewOAuth2HMACStrategy(p.fcfg),
		Config:          p.fcfg,
	}
	p.strategy = core
	strategy := &compose.CommonStrategy{
		CoreStrategy:               core,
		OpenIDConnectTokenStrategy: &openid.DefaultStrategy{Signer: p.idSigner, Config: p.fcfg},
		Signer:                     p.idSigner,
	}
	// Listed explicitly (no ComposeAllEnabled: no implicit, hybrid or
	// jwt-bearer). PKCE and OIDC come after the code factory: they need the
	// code it issues.
	p.op = compose.Compose(p.fcfg, &fositeStorage{Store: store, p: p}, strategy,
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OAuth2ResourceOwnerPasswordCredentialsFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
		compose.OAuth2TokenIntrospectionFactory,
		p.familyRevocationFactory,
		compose.OAuth2PKCEFactory,
		compose.PushedAuthorizeHandlerFactory,
	)
	p.op = &parProvider{OAuth2Provider: p.op, p: p}
	dispatchByGrant(p.fcfg)
	return p, nil
}

func (p *Provider) fositeConfig() *fosite.Config {
	iss := p.cfg.Issuer
	return &fosite.Config{
		AccessTokenLifespan:   p.cfg.AccessTokenTTL,
		RefreshTokenLifespan:  p.cfg.RefreshTokenTTL,
		IDTokenLifespan:       p.cfg.IDTokenTTL,
		AuthorizeCodeLifespan: p.cfg.AuthCodeTTL,
		AccessTokenIssuer:     iss,
		IDTokenIssuer:         iss,
		TokenURL:              iss + "/oauth2/token",
		JWTScopeClaimKey:      jwt.JWTScopeFieldString,
		// Set explicitly: fosite writes its defaults lazily, a data race.
		ScopeStrategy:            fosite.ExactScopeStrategy,
		AudienceMatchingStrategy: p.audienceStrategy,
		// PKCE for every client: RFC 9700 recommends it for confidential
		// clients too, and it closes the downgrade of fosite PR #883.
		EnforcePKCE:                    true,
		EnforcePKCEForPublicClients:    true,
		EnablePKCEPlainChallengeMethod: false,
		RefreshTokenScopes:             []string{"offline_access"},
		GlobalSecret:                   deriveKey(p.cfg.SecretsKey, "hmac-tokens"),
		ClientSecretsHasher:            fositestore.SHA256Hasher{},
		MinParameterEntropy:            fosite.MinParameterEntropy,
		AllowedPromptValues:            []string{"login", "none", "consent"},
		RedirectSecureChecker:          fosite.IsRedirectURISecure,
		TokenEntropy:                   32,
		JWKSFetcherStrategy:            newJWKSFetcher(),
		// Never, not even in dev: fosite's debug text is the wrapped Go
		// error (store and library messages). It is logged with the
		// request id instead (logOAuthError).
		SendDebugMessagesToClients: false,
		// PAR: fosite's own enforcement flag stays off; parProvider
		// enforces the global and per-client requirement in one place.
		PushedAuthorizeRequestURIPrefix: parURIPrefix,
		PushedAuthorizeContextLifespan:  p.cfg.PARTTL,
	}
}

// audienceStrategy is exact matching against the client's registered
// audiences, plus authd's own API audience, which every client may name and
// which is granted when a client asks for no audience.
func (p *Provider) audienceStrategy(haystack []string, needle []string) error {
	var rest []string
	for _, n := range needle {
		if n != p.cfg.APIAudience {
			rest = append(rest, n)
		}
	}
	return fosite.ExactAudienceMatchingStrategy(haystack, rest)
}

// Mount registers every OAuth/OIDC endpoint but /userinfo (MountUserinfo),
// and the consent form's handler on r. The login pages mount themselves
// (loginui.Login).
func (p *Provider) Mount(r *mux.Router) {
	r.HandleFunc("/.well-known/openid-configuration", p.discovery).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/.well-known/oauth-authorization-server", p.discovery).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/.well-known/jwks.json", p.keys.ServeJWKS).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/oauth2/auth", singleParams(p.authorize)).Methods(http.MethodGet, http.MethodPost)
	// Client-authenticated endpoints challenge Basic clients on a 401.
	r.Handle("/oauth2/token", basicChallenge(p.cfg.Issuer, p.limitClientAuth(singleParams(p.token)))).Methods(http.MethodPost)
	r.Handle("/oauth2/introspect", basicChallenge(p.cfg.Issuer, p.limitClientAuth(singleParams(p.introspect)))).Methods(http.MethodPost)
	r.Handle("/oauth2/revoke", basicChallenge(p.cfg.Issuer, p.limitClientAuth(singleParams(p.revoke)))).Methods(http.MethodPost)
	r.Handle("/oauth2/par", basicChallenge(p.cfg.Issuer, p.limitClientAuth(singleParams(p.par)))).Methods(http.MethodPost)
	r.Handle("/oauth2/device/auth", basicChallenge(p.cfg.Issuer, p.limitClientAuth(singleParams(p.deviceAuthorize)))).Methods(http.MethodPost)
	r.HandleFunc("/device", p.devicePage).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc("/oauth2/logout", p.rpLogout).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc("/consent", p.consent).Methods(http.MethodPost)
}

// Issuer returns the configured issuer URL.
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// fositeStorage adds the password grant's credential check to the store.
type fositeStorage struct {
	*fositestore.Store
	p *Provider
}

var _ oauth2.ResourceOwnerPasswordCredentialsGrantStorage = (*fositeStorage)(nil)

// Authenticate implements the password grant's credential check, audited
// as a login like the hosted form's. Bad credentials and disabled users are
// fosite.ErrNotFound (invalid_grant, indistinguishable); anything else is a
// server error.
func (s *fositeStorage) Authenticate(ctx context.Context, name, secret string) (string, error) {
	u, err := s.p.accts.Authenticate(ctx, name, secret)
	s.p.accts.RecordLogin(ctx, audit.Event{Details: map[string]any{"grant_type": "password"}}, u, err)
	switch {
	case errors.Is(err, accounts.ErrInvalidCredentials), errors.Is(err, accounts.ErrUserDisabled), errors.Is(err, accounts.ErrInvalidEmail):
		return "", fosite.ErrNotFound
	case err != nil:
		return "", fmt.Errorf("oauth: password grant: %w", err)
	}
	return u.ID, nil
}

// Clients returns the provider's client registry.
func (p *Provider) Clients() *clients.Registry { return clients.NewRegistry(p.store).InDev(p.cfg.Dev) }

// newJWKSFetcher fetches the key sets of clients registered with a
// jwks_uri. It is set explicitly because fosite's getter writes its default
// lazily (a data race), and that default retries for a long time and logs
// to stderr, outside the JSON logs. A kid the cached set lacks makes fosite
// refetch, so client key rotation needs no wait for the TTL.
func newJWKSFetcher() fosite.JWKSFetcherStrategy {
	c := retryablehttp.NewClient()
	c.RetryMax = 1
	c.HTTPClient.Timeout = 5 * time.Second
	c.Logger = nil
	return fosite.NewDefaultJWKSFetcherStrategy(fosite.JWKSFetcherWithHTTPClient(c), fosite.JKWKSFetcherWithDefaultTTL(10*time.Minute))
}

// fosite returns the concrete provider, for client authentication outside
// the token endpoint.
func (p *Provider) fosite() *fosite.Fosite {
	if w, ok := p.op.(*parProvider); ok {
		return w.OAuth2Provider.(*fosite.Fosite)
	}
	return p.op.(*fosite.Fosite)
}
