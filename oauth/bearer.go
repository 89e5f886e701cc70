package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/authn"
	"github.com/authd/authd/storage/fositestore"
)

var _ authn.Verifier = (*Provider)(nil)

// VerifyAccessToken implements authn.Verifier for authd's own JSON APIs: the
// JWT must verify against a published key (alg pinned, typ at+jwt), come
// from this issuer and be unexpired; then one indexed lookup checks it was
// not revoked (these checks are cached per replica for TokenCacheTTL, see
// tokencache.go), and the user's roles and disabled flag come from the
// accounts cache, which a change invalidates (a disabled user's tokens stop
// working at once on the replica that disabled them). Every client-side failure wraps
// authn.ErrInvalidToken; other errors are the database's.
func (p *Provider) VerifyAccessToken(ctx context.Context, token string) (*authn.Principal, error) {
	if f, ok := p.verified.get(token); ok {
		return p.principal(ctx, f)
	}
	start := p.verified.begin()
	t, err := p.atSigner.Decode(ctx, token)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", authn.ErrInvalidToken, err)
	}
	if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, "at+jwt") {
		return nil, fmt.Errorf("%w: typ %q", authn.ErrInvalidToken, typ)
	}
	c := t.Claims
	if iss, _ := c["iss"].(string); iss != p.cfg.Issuer {
		return nil, fmt.Errorf("%w: issuer %q", authn.ErrInvalidToken, iss)
	}
	exp, ok := unixClaim(c["exp"])
	if !ok || !time.Unix(exp, 0).After(p.cfg.Now()) {
		return nil, fmt.Errorf("%w: expired", authn.ErrInvalidToken)
	}
	sig := p.strategy.AccessTokenSignature(ctx, token)
	req, err := p.store.GetAccessTokenSession(ctx, sig, nil)
	switch {
	case errors.Is(err, fosite.ErrNotFound), errors.Is(err, fosite.ErrInactiveToken):
		return nil, fmt.Errorf("%w: revoked", authn.ErrInvalidToken)
	case err != nil:
		return nil, fmt.Errorf("oauth: verify access token: %w", err)
	}
	f := &tokenFacts{expiresAt: exp}
	f.subject, _ = c["sub"].(string)
	f.clientID, _ = c["client_id"].(string)
	f.tokenID, _ = c["jti"].(string)
	if sc, _ := c["scope"].(string); sc != "" {
		f.scopes = strings.Fields(sc)
	}
	f.audience = audClaim(c["aud"])
	if at, ok := unixClaim(c["auth_time"]); ok {
		f.authTime = at
	}
	f.keys = fositestore.TokenKeys{RequestID: req.GetID(), Subject: f.subject, ClientID: f.clientID, Signature: sig}
	p.verified.put(token, start, f)
	return p.principal(ctx, f)
}

// unixClaim reads a NumericDate however the JWT parser decoded it.
func unixClaim(v interface{}) (int64, bool) {
	switch n := v.(type) {
	case float64:
		return int64(n), true
	case int64:
		return n, true
	case int:
		return int64(n), true
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	}
	return 0, false
}

// audClaim reads aud, a string or an array of strings (RFC 7519 §4.1.3).
func audClaim(v interface{}) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []string:
		return a
	case []interface{}:
		out := make([]string, 0, len(a))
		for _, x := range a {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

var _ authn.ClientDirectory = (*Provider)(nil)

// IsFirstParty implements authn.ClientDirectory from the client cache. A
// deleted client is not first party (its tokens died with it anyway).
func (p *Provider) IsFirstParty(ctx context.Context, clientID string) (bool, error) {
	c, err := p.store.GetClient(ctx, clientID)
	if errors.Is(err, fosite.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	fc, ok := c.(*fositestore.Client)
	return ok && fc.FirstParty, nil
}

// authnUserGone rejects a bearer token whose user was deleted or disabled.
var authnUserGone = fmt.Errorf("%w: user gone or disabled", authn.ErrInvalidToken)

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
