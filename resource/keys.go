package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
)

// maxDocument bounds discovery, JWKS and introspection bodies.
const maxDocument = 1 << 20

// discovery is the part of the issuer's metadata the kit reads.
type discovery struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
}

// keyCache holds the issuer's discovery document and public keys. Reads
// take a read lock; fetches run one at a time (singleflight) and, except
// for the first one and for the periodic KeysMaxAge refresh, only as often
// as the limiter allows.
type keyCache struct {
	cfg     Config
	limiter *rate.Limiter
	group   singleflight.Group

	mu      sync.RWMutex
	meta    *discovery
	keys    map[string]jose.JSONWebKey
	fetched time.Time // of the current keys; zero until the first success
	gen     uint64    // bumped by every successful fetch
	tried   bool      // a first fetch was attempted
}

func newKeyCache(cfg Config) *keyCache {
	return &keyCache{cfg: cfg, limiter: rate.NewLimiter(rate.Every(cfg.RefreshMinInterval), 1)}
}

// errRateLimited: an unknown kid arrived, but a refresh ran too recently.
var errRateLimited = errors.New("JWKS refresh rate-limited")

// key returns the public key for kid. An unknown kid causes at most one
// rate-limited refresh; keys older than KeysMaxAge are refreshed, and kept
// if authd cannot be reached. Errors wrap ErrInvalidToken (the kid is
// unknown) or ErrUnavailable (no keys could be fetched at all).
func (kc *keyCache) key(ctx context.Context, kid string) (jose.JSONWebKey, error) {
	now := kc.cfg.Now()
	kc.mu.RLock()
	k, ok := kc.keys[kid]
	stale := !kc.fetched.IsZero() && now.Sub(kc.fetched) >= kc.cfg.KeysMaxAge
	gen := kc.gen
	kc.mu.RUnlock()
	if ok && !stale {
		return k, nil
	}
	err := kc.refresh(ctx, gen)
	if k2, ok2 := kc.lookup(kid); ok2 {
		return k2, nil
	}
	switch {
	case ok && err != nil:
		return k, nil // authd unreachable (or just asked): the stale key is still ours
	case ok:
		return jose.JSONWebKey{}, fmt.Errorf("%w: key %q is no longer published", ErrInvalidToken, kid)
	case !kc.loaded():
		return jose.JSONWebKey{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	case err != nil && !errors.Is(err, errRateLimited):
		return jose.JSONWebKey{}, fmt.Errorf("%w: unknown key id %q (refresh failed: %v)", ErrInvalidToken, kid, err)
	default:
		return jose.JSONWebKey{}, fmt.Errorf("%w: unknown key id %q", ErrInvalidToken, kid)
	}
}

func (kc *keyCache) loaded() bool {
	kc.mu.RLock()
	defer kc.mu.RUnlock()
	return !kc.fetched.IsZero()
}

func (kc *keyCache) lookup(kid string) (jose.JSONWebKey, bool) {
	kc.mu.RLock()
	defer kc.mu.RUnlock()
	k, ok := kc.keys[kid]
	return k, ok
}

// metadata returns the discovery document, fetching keys and all if needed.
func (kc *keyCache) metadata(ctx context.Context) (*discovery, error) {
	kc.mu.RLock()
	meta, gen := kc.meta, kc.gen
	kc.mu.RUnlock()
	if meta != nil {
		return meta, nil
	}
	if err := kc.refresh(ctx, gen); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	kc.mu.RLock()
	defer kc.mu.RUnlock()
	return kc.meta, nil
}

// refresh fetches discovery (once) and the JWKS. Callers that saw generation
// gen join one fetch; a caller arriving after a newer fetch returns at once.
// Every fetch but the very first waits its turn on the limiter, so neither
// forged kids nor an unreachable authd cause more than one fetch per
// RefreshMinInterval.
func (kc *keyCache) refresh(ctx context.Context, gen uint64) error {
	_, err, _ := kc.group.Do("jwks", func() (any, error) {
		kc.mu.RLock()
		newer, first := kc.gen != gen, !kc.tried
		kc.mu.RUnlock()
		if newer {
			return nil, nil
		}
		if !first && !kc.limiter.AllowN(kc.cfg.Now(), 1) {
			return nil, errRateLimited
		}
		// Detached from the caller: other requests share this fetch.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultHTTPTimeout)
		defer cancel()
		err := kc.fetch(fctx)
		kc.mu.Lock()
		kc.tried = true
		kc.mu.Unlock()
		return nil, err
	})
	return err
}

func (kc *keyCache) fetch(ctx context.Context) error {
	kc.mu.RLock()
	meta := kc.meta
	kc.mu.RUnlock()
	if meta == nil {
		var d discovery
		if err := kc.getJSON(ctx, kc.cfg.Issuer+"/.well-known/openid-configuration", &d); err != nil {
			return fmt.Errorf("discovery: %w", err)
		}
		// OIDC Discovery §4.3: the document must name the issuer we asked.
		if d.Issuer != kc.cfg.Issuer {
			return fmt.Errorf("discovery: issuer %q does not match the configured %q", d.Issuer, kc.cfg.Issuer)
		}
		if d.JWKSURI == "" {
			return errors.New("discovery: no jwks_uri")
		}
		meta = &d
	}
	var set jose.JSONWebKeySet
	if err := kc.getJSON(ctx, meta.JWKSURI, &set); err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	keys := make(map[string]jose.JSONWebKey, len(set.Keys))
	for _, k := range set.Keys {
		// Only public signing keys with a kid; anything else is ignored.
		if k.KeyID == "" || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		keys[k.KeyID] = k
	}
	kc.mu.Lock()
	kc.meta, kc.keys, kc.fetched = meta, keys, kc.cfg.Now()
	kc.gen++
	kc.mu.Unlock()
	return nil
}

func (kc *keyCache) getJSON(ctx context.Context, url string, dst any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := kc.cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDocument))
		return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxDocument)).Decode(dst); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}
