package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ory/fosite"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/authn"
	"github.com/authd/authd/storage/fositestore"
)

// TokenCacheTTL is how long a replica trusts that an access token it
// verified (signature, expiry, and its row not revoked) is still live
// without asking the database again. It is the bound on cross-replica
// revocation: a token revoked on one replica is reported inactive by every
// other within TokenCacheTTL. On the replica that revoked it, never: the
// store reports its own revocations (fositestore.Store.RevokedSince) and a
// cached answer read before one is dropped. Only the token's own facts are
// cached here; the user behind it (roles, disabled) is read on every use
// through accounts.Service.CachedAccess, whose copy a change drops at once
// on the replica that made it and within a notification's latency on the
// others (LISTEN/NOTIFY; it reads the database whenever it is not
// listening).
const TokenCacheTTL = time.Second

// tokenCacheMax bounds each cache; when full, expired entries go, then all.
const tokenCacheMax = 1 << 16

// authnUserGone rejects a bearer token whose user was deleted or disabled.
var authnUserGone = fmt.Errorf("%w: user gone or disabled", authn.ErrInvalidToken)

// tokenFacts is what a verified, unrevoked access token says, as cached.
type tokenFacts struct {
	keys    fositestore.TokenKeys
	stamp   time.Time // time.Now() before the lookup, for RevokedSince
	expires time.Time // on the provider's clock: lookup + TTL, or the token's exp if sooner

	subject, clientID, tokenID string
	scopes, audience           []string
	issuedAt, expiresAt        int64 // unix seconds; expiresAt 0 = none
	authTime                   int64 // unix seconds; 0 = unknown

	// answer is the encoded introspection answer last given for these
	// facts, valid while the user's access is the same value (the accounts
	// cache replaces it on every change), so repeated introspection of a
	// token skips the JSON encoding.
	answer atomic.Pointer[encodedAnswer]
}

type encodedAnswer struct {
	access *accounts.Access // nil for client tokens
	body   []byte           // JSON and a newline; never modified
}

// tokenCache maps SHA-256(token) to its facts. One per use (bearer
// verification, introspection), so neither trusts the other's checks.
type tokenCache struct {
	store   *fositestore.Store
	now     func() time.Time
	mu      sync.Mutex
	entries map[[32]byte]*tokenFacts
	swept   time.Time // last sweep of expired entries
}

func newTokenCache(store *fositestore.Store, now func() time.Time) *tokenCache {
	return &tokenCache{store: store, now: now, entries: map[[32]byte]*tokenFacts{}}
}

// lookupStart is taken before reading the database, so that an answer
// never outlives a revocation that committed while it was being read.
type lookupStart struct {
	stamp time.Time
	at    time.Time
}

func (c *tokenCache) begin() lookupStart {
	return lookupStart{stamp: time.Now(), at: c.now()}
}

func (c *tokenCache) get(token string) (*tokenFacts, bool) {
	k := sha256.Sum256([]byte(token))
	c.mu.Lock()
	f, ok := c.entries[k]
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	if !c.now().Before(f.expires) || c.store.RevokedSince(f.keys, f.stamp) {
		c.mu.Lock()
		if c.entries[k] == f {
			delete(c.entries, k)
		}
		c.mu.Unlock()
		return nil, false
	}
	return f, true
}

func (c *tokenCache) put(token string, start lookupStart, f *tokenFacts) {
	f.stamp = start.stamp
	f.expires = start.at.Add(TokenCacheTTL)
	if f.expiresAt != 0 {
		if exp := time.Unix(f.expiresAt, 0); exp.Before(f.expires) {
			f.expires = exp
		}
	}
	k := sha256.Sum256([]byte(token))
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	// Expired entries of tokens nobody presents again (a refresh replaces
	// its access token) would otherwise stay until the map is full: sweep
	// them once per TTL, which costs a pass over one TTL's worth of tokens.
	if now.Sub(c.swept) >= TokenCacheTTL {
		c.dropExpired(now)
		c.swept = now
	}
	if len(c.entries) >= tokenCacheMax {
		c.dropExpired(now)
		if len(c.entries) >= tokenCacheMax {
			clear(c.entries)
		}
	}
	c.entries[k] = f
}

// dropExpired deletes the entries expired at now; c.mu is held.
func (c *tokenCache) dropExpired(now time.Time) {
	for key, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, key)
		}
	}
}

// userAccess returns the disabled flag and roles of the user behind a
// subject for introspection and bearer verification, from the accounts
// cache (see TokenCacheTTL). Subjects that are not users give nil, nil.
// Refresh and the token endpoint read users live (liveUser).
func (p *Provider) userAccess(ctx context.Context, subject string) (*accounts.Access, error) {
	a, err := p.accts.CachedAccess(ctx, subject)
	if errors.Is(err, accounts.ErrNotFound) {
		return nil, nil
	}
	return a, err
}

// principal answers VerifyAccessToken from facts and the user's access.
func (p *Provider) principal(ctx context.Context, f *tokenFacts) (*authn.Principal, error) {
	pr := &authn.Principal{Roles: []string{}, Subject: f.subject, ClientID: f.clientID, TokenID: f.tokenID,
		Scopes: slices.Clone(f.scopes), Audience: slices.Clone(f.audience)}
	if f.authTime != 0 {
		pr.AuthTime = time.Unix(f.authTime, 0)
	}
	if pr.Subject != "" && pr.Subject != pr.ClientID {
		u, err := p.userAccess(ctx, pr.Subject)
		if err != nil {
			return nil, err
		}
		if u == nil || u.Disabled {
			return nil, authnUserGone
		}
		pr.UserID = u.UserID
		pr.Roles = slices.Clone(u.Roles) // the cache's copy is shared
	}
	return pr, nil
}

// introspection is the RFC 7662 answer for an active access token.
type introspection struct {
	Active    bool     `json:"active"`
	Iss       string   `json:"iss"`
	ClientID  string   `json:"client_id"`
	Sub       string   `json:"sub"`
	Scope     string   `json:"scope"`
	Aud       []string `json:"aud"`
	Iat       int64    `json:"iat"`
	Exp       int64    `json:"exp,omitempty"`
	Roles     []string `json:"roles"`
	TokenUse  string   `json:"token_use"`
	TokenType string   `json:"token_type"`
}

// accessFacts records what introspection learnt about an access token.
func accessFacts(ar fosite.Requester, sess *Session) *tokenFacts {
	f := &tokenFacts{
		keys: fositestore.TokenKeys{RequestID: ar.GetID(), Subject: sess.GetSubject(),
			ClientID: ar.GetClient().GetID()},
		subject: sess.GetSubject(), clientID: ar.GetClient().GetID(),
		scopes: ar.GetGrantedScopes(), audience: ar.GetGrantedAudience(),
		issuedAt: ar.GetRequestedAt().Unix(),
	}
	if exp := sess.GetExpiresAt(fosite.AccessToken); !exp.IsZero() {
		f.expiresAt = exp.Unix()
	}
	return f
}

// answerIntrospection finishes an introspection of an access token whose
// facts are known (fresh or cached): the caller must hold scope introspect
// or be the token's client, and the user behind it must still be enabled.
func (p *Provider) answerIntrospection(ctx context.Context, w http.ResponseWriter, caller fosite.Client, f *tokenFacts) {
	if !p.mayIntrospect(w, caller, f.clientID) {
		return
	}
	access, ok := p.introspectedUser(ctx, w, f.subject, f.clientID)
	if !ok {
		return
	}
	roles := []string{}
	if access != nil {
		roles = access.Roles
	}
	a := f.answer.Load()
	if a == nil || a.access != access {
		body, err := json.Marshal(introspection{Active: true, Iss: p.cfg.Issuer, ClientID: f.clientID, Sub: f.subject,
			Scope: strings.Join(f.scopes, " "), Aud: f.audience, Iat: f.issuedAt, Exp: f.expiresAt, Roles: roles,
			TokenUse: string(fosite.AccessToken), TokenType: "Bearer"})
		if err != nil {
			p.op.WriteIntrospectionError(ctx, w, fosite.ErrServerError.WithWrap(err))
			return
		}
		a = &encodedAnswer{access: access, body: append(body, '\n')}
		f.answer.Store(a)
	}
	p.metrics.introspected("active")
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_, _ = w.Write(a.body)
}
