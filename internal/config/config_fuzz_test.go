package config_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/authd/authd/internal/config"
)

// FuzzFromEnv: whatever the environment holds, FromEnv never panics; it
// returns either an error whose text names an AUTHD_ variable, or a config
// that satisfies the documented rules. The fuzzer picks a variable by
// index and its value.
func FuzzFromEnv(f *testing.F) {
	vars := config.Vars()
	for i, v := range vars {
		for _, val := range []string{"", "x", "-1", "0", "99999999999999999999", "1h", "-5m", "\xff", "http://[::1", "a,b,*", "%zz", v.Default} {
			f.Add(uint8(i), val, uint8(0), "")
		}
	}
	f.Add(uint8(0), "https://auth.example.com", uint8(5), "production")
	f.Add(uint8(0), "http://auth.example.com", uint8(5), "production")
	f.Add(uint8(4), "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", uint8(2), "postgres://u:p@h/db")
	f.Fuzz(func(t *testing.T, i uint8, val string, j uint8, val2 string) {
		env := []string{vars[int(i)%len(vars)].Name + "=" + val, vars[int(j)%len(vars)].Name + "=" + val2}
		c, err := config.FromEnv(env)
		if err != nil {
			if !strings.Contains(err.Error(), "AUTHD_") {
				t.Fatalf("%q: error %q names no AUTHD_ variable", env, err)
			}
			return
		}
		if c.Env != "development" && c.Env != "production" {
			t.Fatalf("%q: env %q", env, c.Env)
		}
		u, err := url.Parse(c.Issuer)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			t.Fatalf("%q: issuer %q", env, c.Issuer)
		}
		if !c.Dev() && u.Scheme != "https" && u.Hostname() != "localhost" && !strings.HasPrefix(u.Hostname(), "127.") && u.Hostname() != "::1" {
			t.Fatalf("%q: plain-http issuer %q in production", env, c.Issuer)
		}
		if c.SecretsKey != "" && len(c.Key()) != 32 {
			t.Fatalf("%q: key of %d bytes", env, len(c.Key()))
		}
		if c.AccessTokenTTL <= 0 || c.RefreshTokenTTL <= 0 || c.IDTokenTTL <= 0 || c.AuthCodeTTL <= 0 || c.KeyPrepublish >= c.KeyRotationPeriod {
			t.Fatalf("%q: durations %+v", env, c)
		}
		if c.BcryptCost < 4 || c.BcryptCost > 31 || c.DBMaxConns < 0 {
			t.Fatalf("%q: numbers %+v", env, c)
		}
		for _, o := range c.CORSOrigins {
			if o == "*" {
				t.Fatalf("%q: wildcard origin", env)
			}
		}
	})
}
