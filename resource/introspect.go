package resource

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// introspector is online mode: RFC 7662 introspection with a short cache
// keyed by the token's SHA-256 (the cache never holds tokens).
type introspector struct {
	cfg   Config
	in    Introspection
	keys  *keyCache
	group singleflight.Group

	mu    sync.Mutex
	cache map[[32]byte]introspected
}

type introspected struct {
	active  bool
	scopes  []string
	roles   []string
	expires time.Time
}

func newIntrospector(cfg Config, keys *keyCache) *introspector {
	return &introspector{cfg: cfg, in: *cfg.Introspection, keys: keys, cache: map[[32]byte]introspected{}}
}

// check asks authd whether token (already verified offline as c) is still
// active, and replaces c's scopes and roles with the live ones.
func (in *introspector) check(ctx context.Context, token string, c *Claims) error {
	key := sha256.Sum256([]byte(token))
	now := in.cfg.Now()
	in.mu.Lock()
	res, ok := in.cache[key]
	in.mu.Unlock()
	if !ok || !now.Before(res.expires) {
		v, err, _ := in.group.Do(string(key[:]), func() (any, error) {
			r, err := in.introspect(ctx, token)
			if err != nil {
				return nil, err
			}
			in.store(key, r, c.ExpiresAt)
			return r, nil
		})
		if err != nil {
			return err
		}
		res = v.(introspected)
	}
	if !res.active {
		return fmt.Errorf("%w: inactive (revoked) according to introspection", ErrInvalidToken)
	}
	c.Scopes, c.Roles = res.scopes, res.roles
	return nil
}

func (in *introspector) store(key [32]byte, r introspected, exp time.Time) {
	if in.in.CacheTTL < 0 {
		return
	}
	now := in.cfg.Now()
	r.expires = now.Add(in.in.CacheTTL)
	if exp.Before(r.expires) {
		r.expires = exp
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.cache) >= in.in.MaxEntries {
		for k, e := range in.cache {
			if !now.Before(e.expires) {
				delete(in.cache, k)
			}
		}
		if len(in.cache) >= in.in.MaxEntries {
			return // full of live entries: skip caching rather than grow
		}
	}
	in.cache[key] = r
}

func (in *introspector) introspect(ctx context.Context, token string) (introspected, error) {
	meta, err := in.keys.metadata(ctx)
	if err != nil {
		return introspected{}, err
	}
	if meta.IntrospectionEndpoint == "" {
		return introspected{}, fmt.Errorf("%w: discovery has no introspection_endpoint", ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultHTTPTimeout)
	defer cancel()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, meta.IntrospectionEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return introspected{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 §2.3.1: id and secret are form-encoded before Basic.
	req.SetBasicAuth(url.QueryEscape(in.in.ClientID), url.QueryEscape(in.in.ClientSecret))
	resp, err := in.cfg.HTTPClient.Do(req)
	if err != nil {
		return introspected{}, fmt.Errorf("%w: introspection: %v", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument))
	if err != nil {
		return introspected{}, fmt.Errorf("%w: introspection: %v", ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		// 401/403 mean our own credentials are wrong: an operator problem,
		// not the token's, so it is reported as unavailable too.
		return introspected{}, fmt.Errorf("%w: introspection answered %d: %.200s", ErrUnavailable, resp.StatusCode, body)
	}
	var r struct {
		Active bool     `json:"active"`
		Scope  string   `json:"scope"`
		Roles  []string `json:"roles"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return introspected{}, fmt.Errorf("%w: introspection: %v", ErrUnavailable, err)
	}
	out := introspected{active: r.Active, scopes: strings.Fields(r.Scope), roles: r.Roles}
	if out.roles == nil {
		out.roles = []string{}
	}
	return out, nil
}
