package keys

import (
	"errors"
	"fmt"
	"time"
)

// Algorithms this package keeps keys for, in the order they appear in JWKS.
const (
	ES256 = "ES256"
	RS256 = "RS256"
)

// algorithms lists every algorithm the Manager keeps an active key for.
func algorithms() []string { return []string{ES256, RS256} }

// Key states reported by List.
const (
	StateNext    = "next"
	StateActive  = "active"
	StateRetired = "retired"
)

// Defaults for zero Config fields.
const (
	DefaultRotationPeriod = 720 * time.Hour
	DefaultPrepublish     = 24 * time.Hour
	// DefaultRetainAfter covers the default ID token TTL (1h, the longest
	// default token lifetime) plus 5 minutes of clock skew.
	DefaultRetainAfter  = time.Hour + 5*time.Minute
	DefaultPollInterval = 5 * time.Second
	DefaultJWKSMaxAge   = 5 * time.Minute
)

// Config tunes a Manager. Zero durations take the defaults above; a nil Now
// is time.Now.
type Config struct {
	RotationPeriod time.Duration // AUTHD_KEY_ROTATION_PERIOD, default 720h: a key signs for this long
	Prepublish     time.Duration // AUTHD_KEY_PREPUBLISH, default 24h: a new key is in JWKS this long before it signs
	RetainAfter    time.Duration // how long a retired key stays in JWKS: the longest token lifetime (max of AT, ID token TTL) plus skew
	PollInterval   time.Duration // how often every replica reloads keys (default 5s); rotation is visible on all replicas without restart
	JWKSMaxAge     time.Duration // Cache-Control max-age of the JWKS (default 5m; Prepublish must be >= it, validate)
	Now            func() time.Time
}

// withDefaults fills zero fields and validates the result. Errors name the
// environment variable an operator would fix.
func (c Config) withDefaults() (Config, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.RotationPeriod, DefaultRotationPeriod)
	def(&c.Prepublish, DefaultPrepublish)
	def(&c.RetainAfter, DefaultRetainAfter)
	def(&c.PollInterval, DefaultPollInterval)
	def(&c.JWKSMaxAge, DefaultJWKSMaxAge)
	if c.Now == nil {
		c.Now = time.Now
	}
	var errs []error
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"AUTHD_KEY_ROTATION_PERIOD", c.RotationPeriod},
		{"AUTHD_KEY_PREPUBLISH", c.Prepublish},
		{"key retention (RetainAfter)", c.RetainAfter},
		{"key poll interval", c.PollInterval},
		{"JWKS max-age", c.JWKSMaxAge},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %s", f.name, f.v))
		}
	}
	// A client may cache the JWKS for JWKSMaxAge; a key published for less
	// than that could sign tokens the client cannot verify yet.
	if c.Prepublish < c.JWKSMaxAge {
		errs = append(errs, fmt.Errorf("AUTHD_KEY_PREPUBLISH (%s) must be at least the JWKS cache max-age (%s)", c.Prepublish, c.JWKSMaxAge))
	}
	// The next key is created when its predecessor starts signing, so it is
	// published for a whole rotation period; that must cover Prepublish.
	if c.RotationPeriod < c.Prepublish {
		errs = append(errs, fmt.Errorf("AUTHD_KEY_ROTATION_PERIOD (%s) must be at least AUTHD_KEY_PREPUBLISH (%s)", c.RotationPeriod, c.Prepublish))
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("keys: invalid configuration: %w", err)
	}
	return c, nil
}

// settle is how long after its creation a key is certainly in every cached
// JWKS: one poll for every replica to load it, plus one cache lifetime.
func (c Config) settle() time.Duration { return c.PollInterval + c.JWKSMaxAge }
