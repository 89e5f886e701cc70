// Package config reads authd's configuration from AUTHD_* environment
// variables, optionally loaded from a .env file. Every variable has a default
// fit for `authd dev`; a bad value fails start-up with one line naming it.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/joho/godotenv"

	"github.com/authd/authd/internal/clientip"
)

// Config is the whole configuration. Field docs are the README's table.
type Config struct {
	Issuer      string   `env:"AUTHD_ISSUER" envDefault:"http://localhost:8080" doc:"Public base URL; the iss of every token. https required in production (loopback excepted)."`
	Listen      string   `env:"AUTHD_LISTEN" envDefault:":8080" doc:"host:port to listen on."`
	DatabaseURL string   `env:"AUTHD_DATABASE_URL" doc:"PostgreSQL URL. Unset in dev: a private cluster under ./.authd/pg."`
	DBMaxConns  int32    `env:"AUTHD_DB_MAX_CONNS" envDefault:"0" doc:"Pool size; 0 = 4 × cores."`
	SecretsKey  string   `env:"AUTHD_SECRETS_KEY" doc:"32 random bytes, base64 (openssl rand -base64 32). Encrypts signing keys and cached token responses. Generated and kept in ./.authd in dev."`
	Env         string   `env:"AUTHD_ENV" envDefault:"development" doc:"development or production."`
	LogFormat   string   `env:"AUTHD_LOG_FORMAT" doc:"json or console; default json in production, console in development."`
	LogLevel    string   `env:"AUTHD_LOG_LEVEL" envDefault:"info" doc:"debug, info, warn or error."`
	Logstash    string   `env:"AUTHD_LOGSTASH_ADDR" doc:"host:port of a Logstash TCP input (newline-delimited JSON); empty = off."`
	SMTPURL     string   `env:"AUTHD_SMTP_URL" doc:"smtp://user:pass@host:587 (STARTTLS required; ?starttls=false for local catchers) or smtps://host:465. Unset in dev: the built-in catcher."`
	MailFrom    string   `env:"AUTHD_MAIL_FROM" envDefault:"authd <no-reply@localhost>" doc:"From address of outgoing mail."`
	MailTmplDir string   `env:"AUTHD_MAIL_TEMPLATES_DIR" doc:"Directory overriding the embedded mail templates."`
	APIAudience string   `env:"AUTHD_API_AUDIENCE" doc:"The aud authd's own APIs require in access tokens (default: the issuer). Tokens for other audiences are refused by every authd API."`
	CORSOrigins []string `env:"AUTHD_CORS_ORIGINS" envSeparator:"," doc:"Comma-separated origins allowed to call the JSON APIs from browsers (never with credentials)."`

	TrustedProxies     []string      `env:"AUTHD_TRUSTED_PROXIES" envSeparator:"," doc:"Comma-separated CIDRs of the proxies/load balancers in front of authd. Behind them the client address (rate limits, audit and access logs) is the rightmost hop of AUTHD_TRUSTED_PROXY_HEADER that is not a trusted proxy. Empty: trust none, the client is the TCP peer."`
	TrustedProxyHeader string        `env:"AUTHD_TRUSTED_PROXY_HEADER" envDefault:"X-Forwarded-For" doc:"The header the trusted proxies write: X-Forwarded-For or Forwarded (RFC 7239). The other one is ignored."`
	RequestTimeout     time.Duration `env:"AUTHD_REQUEST_TIMEOUT" envDefault:"10s" doc:"Deadline of every request; a request still waiting on the database then gets 503 with Retry-After."`
	DBStatementTimeout time.Duration `env:"AUTHD_DB_STATEMENT_TIMEOUT" envDefault:"5s" doc:"Postgres statement_timeout of every connection of the server."`
	DBLockTimeout      time.Duration `env:"AUTHD_DB_LOCK_TIMEOUT" envDefault:"2s" doc:"Postgres lock_timeout of every connection of the server: a request behind a held lock fails fast (503)."`
	DBAcquireTimeout   time.Duration `env:"AUTHD_DB_ACQUIRE_TIMEOUT" envDefault:"2s" doc:"Longest wait for a free pool connection; beyond it the request gets 503 and /readyz reports the pool saturated."`
	MetricsListen      string        `env:"AUTHD_METRICS_LISTEN" doc:"host:port serving /metrics on its own (e.g. 127.0.0.1:9090), and then not on AUTHD_LISTEN. Empty: /metrics on AUTHD_LISTEN."`
	PprofListen        string        `env:"AUTHD_PPROF_LISTEN" doc:"Loopback host:port (e.g. 127.0.0.1:6060) serving Go's /debug/pprof/ profiles, for benchmarks and diagnosis. Empty (the default): no profiling endpoint anywhere."`

	AccessTokenTTL     time.Duration `env:"AUTHD_ACCESS_TOKEN_TTL" envDefault:"15m" doc:"Access token lifetime."`
	RefreshTokenTTL    time.Duration `env:"AUTHD_REFRESH_TOKEN_TTL" envDefault:"720h" doc:"Refresh token lifetime."`
	IDTokenTTL         time.Duration `env:"AUTHD_ID_TOKEN_TTL" envDefault:"1h" doc:"ID token lifetime."`
	AuthCodeTTL        time.Duration `env:"AUTHD_AUTH_CODE_TTL" envDefault:"10m" doc:"Authorization code lifetime."`
	PurgeInterval      time.Duration `env:"AUTHD_PURGE_INTERVAL" envDefault:"10m" doc:"How often expired tokens, sessions and delivered outbox rows are deleted (every replica may do it)."`
	RefreshReuseWindow time.Duration `env:"AUTHD_REFRESH_REUSE_WINDOW" envDefault:"10s" doc:"A refresh token presented again within this window returns the same new pair; later reuse revokes the family."`
	AccessTokenAlg     string        `env:"AUTHD_ACCESS_TOKEN_ALG" envDefault:"ES256" doc:"ES256 or RS256."`
	KeyRotationPeriod  time.Duration `env:"AUTHD_KEY_ROTATION_PERIOD" envDefault:"720h" doc:"How long a signing key signs before the next one takes over."`
	KeyPrepublish      time.Duration `env:"AUTHD_KEY_PREPUBLISH" envDefault:"24h" doc:"How long a new key is in JWKS before it signs."`
	DefaultRole        string        `env:"AUTHD_DEFAULT_ROLE" envDefault:"user" doc:"Role every new user gets."`
	PasswordHash       string        `env:"AUTHD_PASSWORD_HASH" envDefault:"bcrypt" doc:"bcrypt or argon2id."`
	BcryptCost         int           `env:"AUTHD_BCRYPT_COST" envDefault:"10" doc:"bcrypt cost (4–31)."`
	WebhookURL         string        `env:"AUTHD_WEBHOOK_URL" doc:"Where outbox events are POSTed; empty = events are kept but not delivered."`
	WebhookSecret      string        `env:"AUTHD_WEBHOOK_SECRET" doc:"HMAC-SHA256 key of the Authd-Signature header."`

	// Browser sessions of the hosted pages.
	SessionIdleTimeout time.Duration `env:"AUTHD_SESSION_IDLE_TIMEOUT" envDefault:"24h" doc:"A browser session unused this long ends."`
	SessionMaxAge      time.Duration `env:"AUTHD_SESSION_MAX_AGE" envDefault:"336h" doc:"A browser session ends this long after login, however active."`
	// Protocol extensions: pushed authorization requests (RFC 9126).
	PARTTL     time.Duration `env:"AUTHD_PAR_TTL" envDefault:"5m" doc:"How long a request_uri from /oauth2/par stays usable (10s–10m); it must cover the user's login and consent."`
	RequirePAR bool          `env:"AUTHD_REQUIRE_PAR" envDefault:"false" doc:"Refuse authorization requests not pushed to /oauth2/par first, for every client."`
	// Second factors.
	MFARequiredRoles []string `env:"AUTHD_MFA_REQUIRED_ROLES" envSeparator:"," doc:"Comma-separated roles whose holders must pass a second factor at every login (and enrol one first when they have none), e.g. admin."`
	// Upstream identity providers (log in with Google, GitHub, …).
	UpstreamTimeout time.Duration `env:"AUTHD_UPSTREAM_TIMEOUT" envDefault:"10s" doc:"Bound on each call to an upstream identity provider (discovery, JWKS, token, user API), 1s–1m; a slower upstream gets the person a retry page."`
	// OIDC Back-Channel Logout: how long an undelivered logout token is retried.
	BackchannelLogoutMaxAge time.Duration `env:"AUTHD_BACKCHANNEL_LOGOUT_MAX_AGE" envDefault:"24h" doc:"How long a back-channel logout notice is retried (with backoff) before it is given up and listed as failed (1m–720h)."`

	issuerSet bool // AUTHD_ISSUER was given explicitly
}

// Dev reports whether authd runs in development mode.
func (c *Config) Dev() bool { return c.Env != "production" }

// APIAudienceOrIssuer is the aud authd's own APIs require: AUTHD_API_AUDIENCE,
// or the issuer when it is unset.
func (c *Config) APIAudienceOrIssuer() string {
	if c.APIAudience != "" {
		return c.APIAudience
	}
	return c.Issuer
}

// Key decodes AUTHD_SECRETS_KEY (validated by Load).
func (c *Config) Key() []byte {
	k, _ := decodeKey(c.SecretsKey)
	return k
}

// Load reads .env (if present; real environment variables win) and the
// environment, then validates. Errors are one line naming the variable.
func Load() (*Config, error) {
	if err := godotenv.Load(); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf(".env: %w", err)
	}
	return FromEnv(os.Environ())
}

// FromEnv parses the given KEY=VALUE list (no .env lookup) and validates.
func FromEnv(environ []string) (*Config, error) {
	vars := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	var c Config
	_, c.issuerSet = vars["AUTHD_ISSUER"]
	if err := env.ParseWithOptions(&c, env.Options{Environment: vars}); err != nil {
		return nil, explain(err)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// explain turns caarlos0/env's errors into "AUTHD_X: what is wrong".
func explain(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) || len(agg.Errors) == 0 {
		return err
	}
	first := agg.Errors[0]
	var pe env.ParseError
	if errors.As(first, &pe) {
		f, _ := reflect.TypeOf(Config{}).FieldByName(pe.Name)
		want := pe.Type.String()
		switch pe.Type {
		case reflect.TypeOf(time.Duration(0)):
			want = "a duration such as 15m, 1h or 720h"
		case reflect.TypeOf(0), reflect.TypeOf(int32(0)):
			want = "a whole number"
		}
		return fmt.Errorf("%s: invalid value: want %s", f.Tag.Get("env"), want)
	}
	return first
}

func (c *Config) validate() error {
	fail := func(name, format string, a ...any) error {
		return fmt.Errorf("%s: %s", name, fmt.Sprintf(format, a...))
	}
	switch c.Env {
	case "development", "production":
	default:
		return fail("AUTHD_ENV", "must be development or production, got %q", c.Env)
	}
	if c.LogFormat == "" {
		c.LogFormat = map[bool]string{true: "console", false: "json"}[c.Dev()]
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		return fail("AUTHD_LOG_FORMAT", "must be json or console, got %q", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fail("AUTHD_LOG_LEVEL", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	u, err := url.Parse(c.Issuer)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(c.Issuer, "/") {
		return fail("AUTHD_ISSUER", "must be an absolute http(s) URL without query, fragment or trailing slash, got %q", c.Issuer)
	}
	if !c.Dev() && u.Scheme != "https" && !isLoopback(u.Hostname()) {
		return fail("AUTHD_ISSUER", "must use https in production (loopback hosts excepted), got %q", c.Issuer)
	}
	if c.DatabaseURL != "" {
		if _, err := pgxpool.ParseConfig(c.DatabaseURL); err != nil {
			return fail("AUTHD_DATABASE_URL", "not a valid PostgreSQL URL (postgres://user:pass@host:5432/db)")
		}
	}
	if c.DBMaxConns < 0 {
		return fail("AUTHD_DB_MAX_CONNS", "must be ≥ 0, got %d", c.DBMaxConns)
	}
	if c.SecretsKey != "" {
		if _, err := decodeKey(c.SecretsKey); err != nil {
			return fail("AUTHD_SECRETS_KEY", "%v", err)
		}
	}
	for name, d := range map[string]time.Duration{
		"AUTHD_ACCESS_TOKEN_TTL": c.AccessTokenTTL, "AUTHD_REFRESH_TOKEN_TTL": c.RefreshTokenTTL,
		"AUTHD_ID_TOKEN_TTL": c.IDTokenTTL, "AUTHD_AUTH_CODE_TTL": c.AuthCodeTTL,
		"AUTHD_KEY_ROTATION_PERIOD": c.KeyRotationPeriod, "AUTHD_KEY_PREPUBLISH": c.KeyPrepublish,
		"AUTHD_PURGE_INTERVAL": c.PurgeInterval,
	} {
		if d <= 0 {
			return fail(name, "must be a positive duration, got %s", d)
		}
	}
	if c.UpstreamTimeout < time.Second || c.UpstreamTimeout > time.Minute {
		return fail("AUTHD_UPSTREAM_TIMEOUT", "must be between 1s and 1m, got %s", c.UpstreamTimeout)
	}
	if c.BackchannelLogoutMaxAge < time.Minute || c.BackchannelLogoutMaxAge > 720*time.Hour {
		return fail("AUTHD_BACKCHANNEL_LOGOUT_MAX_AGE", "must be between 1m and 720h, got %s", c.BackchannelLogoutMaxAge)
	}
	if c.PARTTL < 10*time.Second || c.PARTTL > 10*time.Minute {
		return fail("AUTHD_PAR_TTL", "must be between 10s and 10m, got %s", c.PARTTL)
	}
	if c.RefreshReuseWindow < 0 || c.RefreshReuseWindow > 5*time.Minute {
		return fail("AUTHD_REFRESH_REUSE_WINDOW", "must be between 0s and 5m, got %s", c.RefreshReuseWindow)
	}
	if c.KeyPrepublish >= c.KeyRotationPeriod {
		return fail("AUTHD_KEY_PREPUBLISH", "must be shorter than AUTHD_KEY_ROTATION_PERIOD (%s), got %s", c.KeyRotationPeriod, c.KeyPrepublish)
	}
	if c.AccessTokenAlg != "ES256" && c.AccessTokenAlg != "RS256" {
		return fail("AUTHD_ACCESS_TOKEN_ALG", "must be ES256 or RS256, got %q", c.AccessTokenAlg)
	}
	if c.PasswordHash != "bcrypt" && c.PasswordHash != "argon2id" {
		return fail("AUTHD_PASSWORD_HASH", "must be bcrypt or argon2id, got %q", c.PasswordHash)
	}
	if c.BcryptCost < 4 || c.BcryptCost > 31 {
		return fail("AUTHD_BCRYPT_COST", "must be between 4 and 31, got %d", c.BcryptCost)
	}
	if c.SessionIdleTimeout <= 0 || c.SessionMaxAge <= 0 {
		return fail("AUTHD_SESSION_IDLE_TIMEOUT", "and AUTHD_SESSION_MAX_AGE must be positive durations, got %s and %s", c.SessionIdleTimeout, c.SessionMaxAge)
	}
	if c.SessionIdleTimeout > c.SessionMaxAge {
		return fail("AUTHD_SESSION_IDLE_TIMEOUT", "must not exceed AUTHD_SESSION_MAX_AGE (%s), got %s", c.SessionMaxAge, c.SessionIdleTimeout)
	}
	if c.SMTPURL != "" {
		su, err := url.Parse(c.SMTPURL)
		if err != nil || (su.Scheme != "smtp" && su.Scheme != "smtps") || su.Hostname() == "" {
			return fail("AUTHD_SMTP_URL", "must be smtp://[user:pass@]host:port or smtps://[user:pass@]host:port")
		}
	}
	if c.WebhookURL != "" {
		wu, err := url.Parse(c.WebhookURL)
		if err != nil || (wu.Scheme != "http" && wu.Scheme != "https") || wu.Host == "" {
			return fail("AUTHD_WEBHOOK_URL", "must be an absolute http(s) URL")
		}
		if c.WebhookSecret == "" {
			return fail("AUTHD_WEBHOOK_SECRET", "is required when AUTHD_WEBHOOK_URL is set")
		}
	}
	if err := c.validateInfra(); err != nil {
		return err
	}
	for _, o := range c.CORSOrigins {
		if o == "*" {
			return fail("AUTHD_CORS_ORIGINS", "a wildcard is not allowed (credentials are sent); list origins")
		}
		ou, err := url.Parse(o)
		if err != nil || ou.Scheme == "" || ou.Host == "" || ou.Path != "" {
			return fail("AUTHD_CORS_ORIGINS", "%q is not an origin like https://app.example.com", o)
		}
	}
	return nil
}

// validateInfra checks the proxy, timeout and metrics settings. The
// timeouts nest: a lock wait ends before its statement, and statements and
// pool waits end before the request's deadline, so the database's own
// errors (with their reasons) come first.
func (c *Config) validateInfra() error {
	if _, err := clientip.ParsePrefixes(c.TrustedProxies); err != nil {
		return fmt.Errorf("AUTHD_TRUSTED_PROXIES: %v", err)
	}
	if _, err := clientip.ParseHeader(c.TrustedProxyHeader); err != nil {
		return fmt.Errorf("AUTHD_TRUSTED_PROXY_HEADER: %v", err)
	}
	for _, v := range []struct {
		name string
		d    time.Duration
	}{{"AUTHD_REQUEST_TIMEOUT", c.RequestTimeout}, {"AUTHD_DB_STATEMENT_TIMEOUT", c.DBStatementTimeout},
		{"AUTHD_DB_LOCK_TIMEOUT", c.DBLockTimeout}, {"AUTHD_DB_ACQUIRE_TIMEOUT", c.DBAcquireTimeout}} {
		if v.d <= 0 {
			return fmt.Errorf("%s: must be a positive duration, got %s", v.name, v.d)
		}
	}
	if c.DBLockTimeout > c.DBStatementTimeout {
		return fmt.Errorf("AUTHD_DB_LOCK_TIMEOUT: must not exceed AUTHD_DB_STATEMENT_TIMEOUT (%s), got %s", c.DBStatementTimeout, c.DBLockTimeout)
	}
	if c.DBStatementTimeout >= c.RequestTimeout || c.DBAcquireTimeout >= c.RequestTimeout {
		return fmt.Errorf("AUTHD_REQUEST_TIMEOUT: must exceed AUTHD_DB_STATEMENT_TIMEOUT (%s) and AUTHD_DB_ACQUIRE_TIMEOUT (%s), got %s", c.DBStatementTimeout, c.DBAcquireTimeout, c.RequestTimeout)
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			return fmt.Errorf("AUTHD_METRICS_LISTEN: must be host:port such as 127.0.0.1:9090, got %q", c.MetricsListen)
		}
		if c.MetricsListen == c.Listen {
			return fmt.Errorf("AUTHD_METRICS_LISTEN: must differ from AUTHD_LISTEN (%s)", c.Listen)
		}
	}
	if c.PprofListen != "" {
		host, _, err := net.SplitHostPort(c.PprofListen)
		if err != nil {
			return fmt.Errorf("AUTHD_PPROF_LISTEN: must be host:port such as 127.0.0.1:6060, got %q", c.PprofListen)
		}
		// Profiles show the process's inner workings (and goroutine dumps,
		// its call arguments): only this host may ever read them.
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("AUTHD_PPROF_LISTEN: must be a loopback IP and port such as 127.0.0.1:6060, got %q", c.PprofListen)
		}
		if c.PprofListen == c.Listen || c.PprofListen == c.MetricsListen {
			return fmt.Errorf("AUTHD_PPROF_LISTEN: must differ from AUTHD_LISTEN and AUTHD_METRICS_LISTEN")
		}
	}
	return nil
}

// ClientResolver is the client-address resolver for AUTHD_TRUSTED_PROXIES
// and AUTHD_TRUSTED_PROXY_HEADER (validated by Load).
func (c *Config) ClientResolver() clientip.Resolver {
	p, _ := clientip.ParsePrefixes(c.TrustedProxies)
	h, _ := clientip.ParseHeader(c.TrustedProxyHeader)
	return clientip.NewResolver(p, h)
}

// RequireProduction checks what `authd serve` needs in production.
func (c *Config) RequireProduction() error {
	if c.Dev() {
		return nil
	}
	for name, v := range map[string]string{"AUTHD_DATABASE_URL": c.DatabaseURL, "AUTHD_SECRETS_KEY": c.SecretsKey} {
		if v == "" {
			return fmt.Errorf("%s: required in production (AUTHD_ENV=production)", name)
		}
	}
	if !c.issuerSet {
		return fmt.Errorf("AUTHD_ISSUER: required in production (AUTHD_ENV=production)")
	}
	return nil
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "::1" || strings.HasPrefix(host, "127.")
}

// decodeKey accepts standard padded, URL-safe and unpadded base64.
func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != 32 {
				return nil, fmt.Errorf("must decode to exactly 32 bytes, got %d (generate one with: openssl rand -base64 32)", len(k))
			}
			return k, nil
		}
	}
	return nil, errors.New("not valid base64 (generate one with: openssl rand -base64 32)")
}

// Var describes one environment variable, for the README and `serve --help`.
type Var struct{ Name, Default, Doc string }

// Vars lists every variable in declaration order.
func Vars() []Var {
	t := reflect.TypeOf(Config{})
	out := make([]Var, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if name := f.Tag.Get("env"); name != "" {
			out = append(out, Var{Name: name, Default: f.Tag.Get("envDefault"), Doc: f.Tag.Get("doc")})
		}
	}
	return out
}
