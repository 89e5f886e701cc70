package resource

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults for zero Config fields.
const (
	DefaultLeeway             = 30 * time.Second
	DefaultRefreshMinInterval = 10 * time.Second
	DefaultKeysMaxAge         = 5 * time.Minute
	DefaultIntrospectionTTL   = 5 * time.Second
	DefaultIntrospectionLimit = 10000
	defaultHTTPTimeout        = 10 * time.Second
)

// defaultAlgorithms are the access-token algorithms authd can be configured
// to use (AUTHD_ACCESS_TOKEN_ALG).
var defaultAlgorithms = []string{"ES256", "RS256"}

// asymmetric are the algorithms a Verifier may be configured with. HS* and
// none are absent on purpose: a resource server holds only public keys, and
// accepting HS256 is how a public key becomes a forging secret.
var asymmetric = map[string]bool{
	"ES256": true, "ES384": true, "ES512": true,
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"EdDSA": true,
}

// Config configures a Verifier. Issuer and Audience are required; every
// other zero field takes its default.
type Config struct {
	// Issuer is authd's issuer URL, exactly as in its tokens' iss
	// (AUTHD_ISSUER). Discovery is read from
	// Issuer + "/.well-known/openid-configuration".
	Issuer string
	// Audience is this service's identifier: a token is accepted only if
	// its aud contains it. Clients ask for it with the audience parameter.
	Audience string
	// Algorithms are the accepted JWS algorithms (default ES256 and RS256).
	// Only asymmetric algorithms are allowed.
	Algorithms []string
	// Leeway is the clock skew tolerated on exp, nbf and iat (default 30s).
	Leeway time.Duration
	// RefreshMinInterval is the least time between two JWKS fetches caused
	// by an unknown kid (default 10s).
	RefreshMinInterval time.Duration
	// KeysMaxAge is how long a fetched JWKS is used before it is fetched
	// again on the next request (default 5m).
	KeysMaxAge time.Duration
	// Introspection, when set, turns on online mode.
	Introspection *Introspection
	// Realm is put in WWW-Authenticate challenges (default: none).
	Realm string
	// HTTPClient fetches discovery, JWKS and introspection (default: a
	// client with a 10s timeout).
	HTTPClient *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Introspection configures online mode: each token that passed the offline
// checks is also introspected (RFC 7662) with these client credentials. The
// client must be confidential and hold scope introspect.
type Introspection struct {
	ClientID     string
	ClientSecret string
	// CacheTTL is how long an answer is reused (default 5s; negative: never).
	// It bounds how long a revoked token keeps working.
	CacheTTL time.Duration
	// MaxEntries bounds the cache (default 10000).
	MaxEntries int
}

func (c Config) withDefaults() (Config, error) {
	var errs []error
	u, err := url.Parse(c.Issuer)
	switch {
	case c.Issuer == "":
		errs = append(errs, errors.New("Issuer is required"))
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		errs = append(errs, fmt.Errorf("Issuer %q is not an absolute http(s) URL", c.Issuer))
	}
	if strings.TrimSpace(c.Audience) == "" {
		errs = append(errs, errors.New("Audience is required: the identifier clients request tokens for"))
	}
	if len(c.Algorithms) == 0 {
		c.Algorithms = defaultAlgorithms
	}
	for _, a := range c.Algorithms {
		if !asymmetric[a] {
			errs = append(errs, fmt.Errorf("algorithm %q is not allowed (asymmetric JWS algorithms only)", a))
		}
	}
	def := func(d *time.Duration, v time.Duration, name string) {
		if *d == 0 {
			*d = v
		} else if *d < 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %s", name, *d))
		}
	}
	def(&c.Leeway, DefaultLeeway, "Leeway")
	def(&c.RefreshMinInterval, DefaultRefreshMinInterval, "RefreshMinInterval")
	def(&c.KeysMaxAge, DefaultKeysMaxAge, "KeysMaxAge")
	if in := c.Introspection; in != nil {
		cp := *in
		if cp.ClientID == "" || cp.ClientSecret == "" {
			errs = append(errs, errors.New("Introspection needs ClientID and ClientSecret"))
		}
		if cp.CacheTTL == 0 {
			cp.CacheTTL = DefaultIntrospectionTTL
		}
		if cp.MaxEntries <= 0 {
			cp.MaxEntries = DefaultIntrospectionLimit
		}
		c.Introspection = &cp
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("resource: invalid configuration: %w", err)
	}
	return c, nil
}
