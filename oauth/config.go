package oauth

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/authd/authd/internal/ratelimit"
	"github.com/authd/authd/oauth/clients"
)

// Config is the provider's configuration. Zero durations take the DESIGN.md
// defaults.
type Config struct {
	// Issuer is the public base URL, e.g. https://auth.example.com (no
	// trailing slash). Outside Dev it must be https or a loopback http URL.
	Issuer string
	// APIAudience is the aud of tokens for authd's own APIs, granted when a
	// client names no audience; the issuer when empty.
	APIAudience string

	AccessTokenTTL  time.Duration // 15m
	RefreshTokenTTL time.Duration // 720h
	IDTokenTTL      time.Duration // 1h
	AuthCodeTTL     time.Duration // 10m
	// RefreshReuseWindow is how long after a refresh the same refresh token
	// may be presented again to get the same response (refresh.go); the
	// one place the window is set. Zero disables replays (no default:
	// authd wires AUTHD_REFRESH_REUSE_WINDOW, 10s unless set).
	RefreshReuseWindow time.Duration

	// AccessTokenAlg signs access tokens: ES256 (default) or RS256.
	AccessTokenAlg string

	// SecretsKey (32 bytes, AUTHD_SECRETS_KEY) is the root from which the
	// HMAC secret of codes and refresh tokens and the key encrypting cached
	// refresh responses are derived.
	SecretsKey []byte

	// Dev relaxes the issuer rule (fosite debug text is never sent).
	Dev bool

	// Now is the clock; time.Now when nil.
	Now func() time.Time

	// PasswordGrantLimit bounds attempts per client IP at
	// grant_type=password; nil does not limit.
	PasswordGrantLimit *ratelimit.Limiter
	// ClientAuthFailureLimit counts failed client authentications per
	// (client address, client_id) at the token, introspection and
	// revocation endpoints; a key out of tokens gets 429 for its failures,
	// never for a successful authentication (RFC 9700 §2.5). Nil takes the
	// default: 20 failures, then one per 3s.
	ClientAuthFailureLimit *ratelimit.Limiter

	// PARTTL is how long a request_uri from /oauth2/par stays usable
	// (RFC 9126); it must cover the login and consent the browser goes
	// through with it. 5m when zero.
	PARTTL time.Duration
	// RequirePAR refuses every authorization request that did not come
	// through /oauth2/par, whatever the client's own flag says.
	RequirePAR bool

	// DeviceCodeTTL is how long a device authorization can be approved and
	// polled (RFC 8628); 10m when zero. DevicePollInterval is the interval
	// devices are told to poll at; 5s when zero.
	DeviceCodeTTL      time.Duration
	DevicePollInterval time.Duration
	// DeviceCodeLimit counts wrong user codes entered at /device per client
	// IP; an address out of tokens is refused. Nil takes the default: 10
	// wrong codes, then one per 6s.
	DeviceCodeLimit *ratelimit.Limiter
}

func (c *Config) setDefaults() error {
	c.Issuer = strings.TrimRight(c.Issuer, "/")
	u, err := url.Parse(c.Issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("oauth: issuer %q must be an absolute http(s) URL without query or fragment", c.Issuer)
	}
	if u.Scheme == "http" && !c.Dev && !clients.IsLoopbackHost(u.Hostname()) {
		return fmt.Errorf("oauth: issuer %q must use https (http is allowed only for loopback hosts)", c.Issuer)
	}
	if c.APIAudience == "" {
		c.APIAudience = c.Issuer
	}
	if len(c.SecretsKey) != 32 {
		return errors.New("oauth: secrets key must be 32 bytes")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.AccessTokenTTL, 15*time.Minute)
	def(&c.RefreshTokenTTL, 720*time.Hour)
	def(&c.IDTokenTTL, time.Hour)
	def(&c.AuthCodeTTL, 10*time.Minute)
	def(&c.PARTTL, 5*time.Minute)
	def(&c.DeviceCodeTTL, 10*time.Minute)
	def(&c.DevicePollInterval, 5*time.Second)
	switch c.AccessTokenAlg {
	case "":
		c.AccessTokenAlg = "ES256"
	case "ES256", "RS256":
	default:
		return fmt.Errorf("oauth: access token alg %q not supported (ES256 or RS256)", c.AccessTokenAlg)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ClientAuthFailureLimit == nil {
		c.ClientAuthFailureLimit = ratelimit.New(ratelimit.Config{Every: 3 * time.Second, Burst: 20, Now: c.Now})
	}
	if c.DeviceCodeLimit == nil {
		c.DeviceCodeLimit = ratelimit.New(ratelimit.Config{Every: 6 * time.Second, Burst: 10, Now: c.Now})
	}
	return nil
}

// deriveKey derives an independent 32-byte key for purpose from the
// secrets key, so one leaked derived key reveals nothing about the others.
func deriveKey(root []byte, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, root, nil, "authd oauth "+purpose, 32)
	if err != nil {
		panic(err) // only for lengths out of range, which 32 is not
	}
	return k
}
