package clients

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/authd/authd/internal/problem"
	"github.com/authd/authd/storage/fositestore"
)

// Spec describes a client to register or the new state of one.
type Spec struct {
	// ID is optional; a random id is generated when empty.
	ID                     string
	Name                   string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	// GrantTypes: authorization_code, refresh_token, client_credentials,
	// password (first-party only). Default: authorization_code + refresh_token.
	GrantTypes    []string
	ResponseTypes []string // only "code"; default when the code grant is on
	Scopes        []string // a subset of Scopes
	Audience      []string
	Public        bool
	FirstParty    bool
	// TokenEndpointAuthMethod: none (public clients), client_secret_basic
	// (default), client_secret_post or private_key_jwt.
	TokenEndpointAuthMethod string
	// JWKS is the client's public key set (JSON) for private_key_jwt. Keys
	// without "use" are registered as signing keys.
	JWKS json.RawMessage
	// JWKSURI is where the client publishes its key set instead (https, or
	// http on a loopback host); exclusive with JWKS.
	JWKSURI string
	// TokenEndpointAuthSigningAlg is the alg private_key_jwt assertions must
	// use: RS256 or ES256. When empty it is inferred from JWKS (P-256 keys:
	// ES256, RSA keys: RS256), or RS256 with a JWKSURI.
	TokenEndpointAuthSigningAlg string
	// IDTokenSignedResponseAlg is RS256 (default) or ES256.
	IDTokenSignedResponseAlg string
	// ChargeMaxPerSpend and ChargeMaxPerUserDay cap what a service holding
	// credits:charge may charge: one charge, and one user per UTC day; 0 =
	// no cap. The ledger enforces them under the account lock.
	ChargeMaxPerSpend, ChargeMaxPerUserDay int64
	// RequirePushedAuthorizationRequests makes the client start every
	// authorization at /oauth2/par.
	RequirePushedAuthorizationRequests bool
	// RequireMFA makes the client's users pass a second factor (and enrol
	// one when they have none) before it gets a code.
	RequireMFA bool
	// BackchannelLogoutURI receives logout tokens (OIDC Back-Channel Logout
	// 1.0): https, no fragment; http on a loopback host only in development.
	BackchannelLogoutURI string
	// BackchannelLogoutSessionRequired: every logout token the client gets
	// carries sid (tokens that could only name the user are not sent).
	BackchannelLogoutSessionRequired bool
}

// Registry manages OAuth clients (CLI, admin API and console). Errors are
// ErrNotFound, ErrExists, or a *problem.Error 400 naming the invalid field;
// Problem translates them for an answer.
type Registry struct {
	store *fositestore.Store
	// dev admits http back-channel logout URIs on loopback hosts.
	dev bool
}

// NewRegistry returns the registry over store, with production rules.
func NewRegistry(store *fositestore.Store) *Registry {
	return &Registry{store: store}
}

// InDev makes cr apply development rules when dev (AUTHD_ENV=development):
// http URLs on loopback hosts where authd calls clients back. It returns cr.
func (cr *Registry) InDev(dev bool) *Registry {
	cr.dev = dev
	return cr
}

// InTx runs fn in one transaction of the client store; registry calls made
// with fn's ctx join it.
func (cr *Registry) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	return cr.store.InTx(ctx, fn)
}

// CreateClient validates spec and registers it. For clients authenticating
// with a shared secret it returns the secret (32 random bytes, base64url):
// shown once, only its SHA-256 is stored.
func (cr *Registry) CreateClient(ctx context.Context, spec Spec) (*fositestore.Client, string, error) {
	c, err := clientFromSpec(spec, cr.dev)
	if err != nil {
		return nil, "", err
	}
	if c.ID == "" {
		c.ID = randomID()
	}
	secret := ""
	if usesSecret(c) {
		secret, c.SecretHash = newSecret()
	}
	if err := cr.store.CreateClient(ctx, c); err != nil {
		if errors.Is(err, fositestore.ErrClientExists) {
			return nil, "", ErrExists
		}
		return nil, "", err
	}
	return c, secret, nil
}

// GetClient returns a client.
func (cr *Registry) GetClient(ctx context.Context, id string) (*fositestore.Client, error) {
	c, err := cr.store.Client(ctx, id)
	if errors.Is(err, fositestore.ErrNotFound) {
		return nil, ErrNotFound
	}
	return c, err
}

// ListClients returns every client, oldest first.
func (cr *Registry) ListClients(ctx context.Context) ([]*fositestore.Client, error) {
	return cr.store.ListClients(ctx)
}

// DeleteClient removes a client and, by cascade, every token issued to it.
func (cr *Registry) DeleteClient(ctx context.Context, id string) error {
	err := cr.store.DeleteClient(ctx, id)
	if errors.Is(err, fositestore.ErrNotFound) {
		return ErrNotFound
	}
	return err
}

// UpdateClient replaces the client's settings with spec (spec.ID is
// ignored). The secret is kept while the client still uses one; a secret is
// generated and returned when it starts needing one.
func (cr *Registry) UpdateClient(ctx context.Context, id string, spec Spec) (*fositestore.Client, string, error) {
	old, err := cr.GetClient(ctx, id)
	if err != nil {
		return nil, "", err
	}
	spec.ID = id
	c, err := clientFromSpec(spec, cr.dev)
	if err != nil {
		return nil, "", err
	}
	secret := ""
	switch {
	case !usesSecret(c):
		c.SecretHash = nil
	case len(old.SecretHash) > 0:
		c.SecretHash = old.SecretHash
	default:
		secret, c.SecretHash = newSecret()
	}
	if err := cr.store.UpdateClient(ctx, c); err != nil {
		if errors.Is(err, fositestore.ErrNotFound) {
			return nil, "", ErrNotFound
		}
		return nil, "", err
	}
	return c, secret, nil
}

// RotateSecret replaces a confidential client's secret and returns the new
// one; the old one stops working at once.
func (cr *Registry) RotateSecret(ctx context.Context, id string) (string, error) {
	c, err := cr.GetClient(ctx, id)
	if err != nil {
		return "", err
	}
	if !usesSecret(c) {
		return "", problem.Invalid("token_endpoint_auth_method", "this client does not authenticate with a secret")
	}
	secret, hash := newSecret()
	c.SecretHash = hash
	if err := cr.store.UpdateClient(ctx, c); err != nil {
		return "", err
	}
	return secret, nil
}

func usesSecret(c *fositestore.Client) bool {
	m := c.GetTokenEndpointAuthMethod()
	return m == "client_secret_basic" || m == "client_secret_post"
}

func newSecret() (string, []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	s := base64.RawURLEncoding.EncodeToString(b)
	h := sha256.Sum256([]byte(s))
	return s, h[:]
}

// randomID is a generated client id: 128 random bits in lower-case hex, so
// that no id starts with "-" (base64url did once in 64, and the CLI and
// shells then took `authd client get -3Br…` for a flag).
func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// DeviceGrantType is the grant type of the device authorization grant
// (RFC 8628 §3.4).
const DeviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"

// GrantTypes are the grant types a client may be registered with: those
// the token endpoint implements.
func GrantTypes() []string {
	return []string{"authorization_code", "refresh_token", "client_credentials", "password", DeviceGrantType}
}

var (
	clientIDRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)
	authMethod = []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
)

// clientFromSpec validates spec and fills the defaults; dev admits http
// back-channel logout URIs on loopback hosts.
func clientFromSpec(s Spec, dev bool) (*fositestore.Client, error) {
	if s.ID != "" && !clientIDRE.MatchString(s.ID) {
		return nil, problem.Invalid("client_id", "use 1-128 characters from A-Z a-z 0-9 . _ ~ -")
	}
	name := strings.TrimSpace(s.Name)
	if name == "" || len(name) > 200 {
		return nil, problem.Invalid("name", "a name of 1-200 characters is required")
	}
	grants := slices.Clone(s.GrantTypes)
	if len(grants) == 0 {
		grants = []string{"authorization_code", "refresh_token"}
	}
	for _, g := range grants {
		if !slices.Contains(GrantTypes(), g) {
			return nil, problem.Invalid("grant_types", fmt.Sprintf("unknown grant type %q", g))
		}
	}
	if slices.Contains(grants, "password") && !s.FirstParty {
		return nil, problem.Invalid("grant_types", "the password grant is only for first-party clients")
	}
	if slices.Contains(grants, "client_credentials") && s.Public {
		return nil, problem.Invalid("grant_types", "public clients cannot use client_credentials")
	}
	code := slices.Contains(grants, "authorization_code")
	resp := slices.Clone(s.ResponseTypes)
	if len(resp) == 0 && code {
		resp = []string{"code"}
	}
	for _, r := range resp {
		if r != "code" {
			return nil, problem.Invalid("response_types", fmt.Sprintf("unsupported response type %q (only code)", r))
		}
	}
	if code && len(s.RedirectURIs) == 0 {
		return nil, problem.Invalid("redirect_uris", "the authorization_code grant needs at least one redirect URI")
	}
	for _, u := range s.RedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			return nil, problem.Invalid("redirect_uris", err.Error())
		}
	}
	for _, u := range s.PostLogoutRedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			return nil, problem.Invalid("post_logout_redirect_uris", err.Error())
		}
	}
	// Resource servers define their own scopes (notes:read, …), so any
	// well-formed scope token may be registered, as in Hydra; only admins
	// register clients, and discovery advertises authd's own scopes.
	for _, sc := range s.Scopes {
		if !validScopeToken(sc) {
			return nil, problem.Invalid("scope", fmt.Sprintf("%q is not a valid scope token (RFC 6749 §3.3)", sc))
		}
	}
	// account changes the user's email, password and sessions: only apps
	// the operator vouches for may ask for it (the route checks again).
	if slices.Contains(s.Scopes, "account") && !s.FirstParty {
		return nil, problem.Invalid("scope", "the account scope is only for first-party clients")
	}
	for _, a := range s.Audience {
		if strings.TrimSpace(a) == "" || strings.ContainsAny(a, " \t\n") {
			return nil, problem.Invalid("audience", "audiences are non-empty strings without spaces")
		}
	}
	method := s.TokenEndpointAuthMethod
	switch {
	case method == "" && s.Public:
		method = "none"
	case method == "" && (len(s.JWKS) > 0 || s.JWKSURI != ""):
		method = "private_key_jwt" // keys are registered only to sign assertions
	case method == "":
		method = "client_secret_basic"
	case !slices.Contains(authMethod, method):
		return nil, problem.Invalid("token_endpoint_auth_method", fmt.Sprintf("unknown method %q", method))
	case s.Public && method != "none":
		return nil, problem.Invalid("token_endpoint_auth_method", "public clients use none")
	case !s.Public && method == "none":
		return nil, problem.Invalid("token_endpoint_auth_method", "confidential clients must authenticate; mark the client public instead")
	}
	for field, alg := range map[string]string{"token_endpoint_auth_signing_alg": s.TokenEndpointAuthSigningAlg, "id_token_signed_response_alg": s.IDTokenSignedResponseAlg} {
		if alg != "" && alg != "RS256" && alg != "ES256" {
			return nil, problem.Invalid(field, "use RS256 or ES256")
		}
	}
	if s.ChargeMaxPerSpend < 0 {
		return nil, problem.Invalid("charge_max_per_spend", "a cap is a positive number of credits, or 0 for none")
	}
	if s.ChargeMaxPerUserDay < 0 {
		return nil, problem.Invalid("charge_max_per_user_day", "a cap is a positive number of credits, or 0 for none")
	}
	if s.BackchannelLogoutURI != "" {
		if err := checkBackchannelURI(s.BackchannelLogoutURI, dev); err != nil {
			return nil, problem.Invalid("backchannel_logout_uri", err.Error())
		}
	} else if s.BackchannelLogoutSessionRequired {
		return nil, problem.Invalid("backchannel_logout_session_required", "needs a backchannel_logout_uri")
	}
	keys, err := clientKeys(method, s)
	if err != nil {
		return nil, err
	}
	return &fositestore.Client{
		ID: s.ID, Name: name,
		ChargeMaxPerSpend: s.ChargeMaxPerSpend, ChargeMaxPerUserDay: s.ChargeMaxPerUserDay,
		RedirectURIs: slices.Clone(s.RedirectURIs), PostLogoutRedirectURIs: slices.Clone(s.PostLogoutRedirectURIs),
		GrantTypes: grants, ResponseTypes: resp, Scopes: slices.Clone(s.Scopes), Audience: slices.Clone(s.Audience),
		Public: s.Public, FirstParty: s.FirstParty, TokenEndpointAuthMethod: method,
		TokenEndpointAuthSigningAlg: keys.alg, JWKS: keys.jwks, JWKSURI: s.JWKSURI,
		IDTokenSignedResponseAlg:           s.IDTokenSignedResponseAlg,
		RequirePushedAuthorizationRequests: s.RequirePushedAuthorizationRequests,
		RequireMFA:                         s.RequireMFA,
		BackchannelLogoutURI:               s.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired:   s.BackchannelLogoutSessionRequired,
	}, nil
}

// checkBackchannelURI accepts the absolute https URLs authd may POST logout
// tokens to (OIDC Back-Channel Logout 1.0 §2.2: no fragment); in development
// also http on a loopback host, where a local app listens.
func checkBackchannelURI(raw string, dev bool) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("%q must not have a fragment", raw)
	}
	if u.User != nil {
		return fmt.Errorf("%q must not carry credentials", raw)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && dev && IsLoopbackHost(u.Hostname()):
	case u.Scheme == "http" && IsLoopbackHost(u.Hostname()):
		return fmt.Errorf("%q: http is only allowed in development; use https", raw)
	default:
		return fmt.Errorf("%q: use https", raw)
	}
	if len(raw) > 2000 {
		return fmt.Errorf("the URL is longer than 2000 characters")
	}
	return nil
}

// checkRedirectURI accepts absolute URIs without fragment that are https,
// http on a loopback host (RFC 8252 §7.3), or a private-use scheme of a
// native app (RFC 8252 §7.1). Schemes that run code or read files are out.
func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return fmt.Errorf("redirect URI %q is not an absolute URI", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("redirect URI %q must not have a fragment", raw)
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		if u.Host == "" {
			return fmt.Errorf("redirect URI %q has no host", raw)
		}
	case "http":
		if !IsLoopbackHost(u.Hostname()) {
			return fmt.Errorf("redirect URI %q: http is only allowed for loopback hosts", raw)
		}
	case "javascript", "data", "file", "vbscript", "about", "blob":
		return fmt.Errorf("redirect URI %q uses a forbidden scheme", raw)
	default:
		if !strings.Contains(u.Scheme, ".") {
			return fmt.Errorf("redirect URI %q: custom schemes must be reverse domain names (RFC 8252)", raw)
		}
	}
	return nil
}

// validScopeToken reports whether s is an RFC 6749 §3.3 scope-token:
// 1*( %x21 / %x23-5B / %x5D-7E ), here at most 128 bytes.
func validScopeToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x22 || c == 0x5C || c > 0x7E {
			return false
		}
	}
	return true
}

// ChargeCaps returns what clientID may charge a user: per charge and per
// user per UTC day, 0 meaning no cap. It reads the client cache, so it
// costs a charge nothing while the cache is warm.
func (cr *Registry) ChargeCaps(ctx context.Context, clientID string) (perSpend, perUserDay int64, err error) {
	c, err := cr.store.GetClient(ctx, clientID)
	if err != nil {
		return 0, 0, err
	}
	fc, ok := c.(*fositestore.Client)
	if !ok {
		return 0, 0, nil
	}
	return fc.ChargeMaxPerSpend, fc.ChargeMaxPerUserDay, nil
}

// IsLoopbackHost reports whether h names the local machine, where plain
// http is allowed (RFC 8252 §7.3).
func IsLoopbackHost(h string) bool {
	return h == "localhost" || h == "127.0.0.1" || h == "::1" || strings.HasSuffix(h, ".localhost")
}
