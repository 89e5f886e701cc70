package fositestore_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/token/jwt"

	"github.com/authd/authd/storage/fositestore"
	"github.com/authd/authd/storage/fositetest"
)

// provider drives the store through a real fosite provider, proving the
// storage contract against fosite itself rather than against our reading of
// it. HMAC access tokens are enough here; the oauth package tests JWTs.
type provider struct {
	t        *testing.T
	ctx      context.Context
	st       *fositestore.Store
	clock    *fositetest.Clock
	op       fosite.OAuth2Provider
	strategy *oauth2.HMACSHAStrategy
}

const (
	redirectURI = "https://app.test/cb"
	verifier    = "dBjftJeZ4CQP-0S6_WzA2MjdBjftJeZ4CQP-0S6_WzA2Mj"
	window      = 10 * time.Second
)

func newProvider(t *testing.T, enforcePKCE bool) *provider {
	t.Helper()
	clock := fositetest.NewClock()
	st := newStore(t, fositestore.Options{Now: clock.Now})
	fositetest.MustCreateClient(t, st, "client")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &fosite.Config{
		GlobalSecret:             []byte("0123456789abcdef0123456789abcdef"),
		ClientSecretsHasher:      fositestore.SHA256Hasher{},
		ScopeStrategy:            fosite.ExactScopeStrategy,
		AudienceMatchingStrategy: fosite.ExactAudienceMatchingStrategy,
		EnforcePKCE:              enforcePKCE,
		RefreshTokenScopes:       []string{"offline_access"},
		IDTokenIssuer:            "https://authd.test",
		AccessTokenIssuer:        "https://authd.test",
		TokenURL:                 "https://authd.test/oauth2/token",
	}
	hmacStrategy := compose.NewOAuth2HMACStrategy(cfg)
	keyGetter := func(context.Context) (interface{}, error) { return key, nil }
	strategy := &compose.CommonStrategy{
		CoreStrategy:               hmacStrategy,
		OpenIDConnectTokenStrategy: compose.NewOpenIDConnectStrategy(keyGetter, cfg),
		Signer:                     &jwt.DefaultSigner{GetPrivateKey: keyGetter},
	}
	op := compose.Compose(cfg, st, strategy,
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
		compose.OAuth2PKCEFactory,
	)
	return &provider{t: t, ctx: context.Background(), st: st, clock: clock, op: op, strategy: hmacStrategy}
}

// authorize runs /auth for alice and returns the code.
func (p *provider) authorize() string {
	p.t.Helper()
	challenge := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {"client"}, "redirect_uri": {redirectURI},
		"scope": {"openid offline_access"}, "state": {"state-12345678"}, "nonce": {"nonce-12345678"},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(challenge[:])},
		"code_challenge_method": {"S256"},
	}
	r, _ := http.NewRequest(http.MethodGet, "https://authd.test/oauth2/auth?"+q.Encode(), nil)
	ar, err := p.op.NewAuthorizeRequest(p.ctx, r)
	if err != nil {
		p.t.Fatalf("authorize request: %v", fosite.ErrorToRFC6749Error(err).WithExposeDebug(true).GetDescription())
	}
	for _, s := range ar.GetRequestedScopes() {
		ar.GrantScope(s)
	}
	resp, err := p.op.NewAuthorizeResponse(p.ctx, ar, fositetest.NewSession("alice", time.Now().UTC()))
	if err != nil {
		p.t.Fatalf("authorize response: %v", err)
	}
	return resp.GetCode()
}

func tokenRequest(form url.Values) *http.Request {
	r, _ := http.NewRequest(http.MethodPost, "https://authd.test/oauth2/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth("client", "secret-client")
	return r
}

// exchange runs the code grant the way Hydra and authd do: NewAccessRequest
// outside any transaction, NewAccessResponse inside one.
func (p *provider) exchange(code, codeVerifier string) (map[string]interface{}, error) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}}
	if codeVerifier != "" {
		form.Set("code_verifier", codeVerifier)
	}
	ar, err := p.op.NewAccessRequest(p.ctx, tokenRequest(form), fositetest.EmptySession())
	if err != nil {
		return nil, err
	}
	var resp fosite.AccessResponder
	err = p.st.InTx(p.ctx, func(ctx context.Context) error {
		var err error
		resp, err = p.op.NewAccessResponse(ctx, ar)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp.ToMap(), nil
}

// refresh runs a fositestore.RefreshTx as authd's token endpoint does, with
// its reuse-window policy inlined: a used token whose successor is unused,
// rotated less than window ago, replays the saved body.
func (p *provider) refresh(rt string) (body []byte, replayed bool, err error) {
	sig := p.strategy.RefreshTokenSignature(p.ctx, rt)
	tx, err := p.st.BeginRefresh(p.ctx, sig)
	if err != nil {
		return nil, false, err
	}
	defer tx.Rollback(p.ctx)
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	if rs := tx.State(); rs.Used && rs.SuccessorActive && rs.Response != nil && rs.SinceUse < window {
		_, err := p.op.NewAccessRequest(tx.Replay(p.ctx), tokenRequest(form), fositetest.EmptySession())
		if cerr := tx.Commit(p.ctx, nil); err == nil {
			err = cerr
		}
		return rs.Response, true, err
	}
	ctx := tx.Context(p.ctx)
	ar, err := p.op.NewAccessRequest(ctx, tokenRequest(form), fositetest.EmptySession())
	if err != nil {
		_ = tx.Commit(p.ctx, nil) // keep the reuse revocation
		return nil, false, err
	}
	resp, err := p.op.NewAccessResponse(ctx, ar)
	if err != nil {
		return nil, false, err
	}
	body, _ = json.Marshal(resp.ToMap())
	return body, false, tx.Commit(p.ctx, body)
}

// backdate moves every rotation time back by d (the database's clock is
// the one that counts).
func (p *provider) backdate(d time.Duration) {
	p.t.Helper()
	if _, err := p.st.Querier(p.ctx).Exec(p.ctx, `UPDATE oauth2_refresh SET first_used_at = first_used_at - $1::interval
		WHERE first_used_at IS NOT NULL`, d.String()); err != nil {
		p.t.Fatal(err)
	}
}

func (p *provider) accessTokenActive(at string) bool {
	_, err := p.st.GetAccessTokenSession(p.ctx, p.strategy.AccessTokenSignature(p.ctx, at), nil)
	return err == nil
}

func mustRFC(t *testing.T, err error, want *fosite.RFC6749Error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %s", err, want.ErrorField)
	}
}

func TestFosite_CodeRefreshReuse(t *testing.T) {
	p := newProvider(t, true)
	tokens, err := p.exchange(p.authorize(), verifier)
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	at1, rt1 := tokens["access_token"].(string), tokens["refresh_token"].(string)
	if at1 == "" || rt1 == "" || tokens["id_token"] == nil {
		t.Fatalf("token response: %v", tokens)
	}

	// First refresh rotates; a retry inside the window gets the same body.
	body1, replayed, err := p.refresh(rt1)
	if err != nil || replayed {
		t.Fatalf("refresh: replayed %v, err %v", replayed, err)
	}
	var pair map[string]interface{}
	_ = json.Unmarshal(body1, &pair)
	at2, rt2 := pair["access_token"].(string), pair["refresh_token"].(string)
	if at2 == "" || rt2 == "" || rt2 == rt1 || pair["id_token"] == nil {
		t.Fatalf("refresh response: %s", body1)
	}
	if p.accessTokenActive(at1) || !p.accessTokenActive(at2) {
		t.Fatal("rotation must retire the old access token and keep the new one")
	}
	p.backdate(window / 2)
	body2, replayed, err := p.refresh(rt1)
	if err != nil || !replayed || string(body2) != string(body1) {
		t.Fatalf("retry in window: replayed %v, err %v, same body %v", replayed, err, string(body2) == string(body1))
	}
	if !p.accessTokenActive(at2) {
		t.Fatal("a retry inside the window must not revoke the family")
	}

	// Reuse after the window: invalid_grant, and the whole family is gone.
	p.backdate(window)
	_, _, err = p.refresh(rt1)
	mustRFC(t, err, fosite.ErrInvalidGrant)
	if p.accessTokenActive(at2) {
		t.Fatal("reuse after the window must revoke the family's access token")
	}
	_, _, err = p.refresh(rt2)
	mustRFC(t, err, fosite.ErrInvalidGrant)
}

func TestFosite_CodeReplayRevokesTokens(t *testing.T) {
	p := newProvider(t, true)
	code := p.authorize()
	tokens, err := p.exchange(code, verifier)
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	_, err = p.exchange(code, verifier)
	mustRFC(t, err, fosite.ErrInvalidGrant)
	if p.accessTokenActive(tokens["access_token"].(string)) {
		t.Fatal("replaying a code must revoke the tokens of its first exchange")
	}
	_, _, err = p.refresh(tokens["refresh_token"].(string))
	mustRFC(t, err, fosite.ErrInvalidGrant)
}

func TestFosite_PKCEDowngradeBlocked(t *testing.T) {
	// EnforcePKCE off, so only the store's soft delete stands between a
	// failed verifier and a second attempt without one (fosite PR #883).
	p := newProvider(t, false)
	code := p.authorize()
	_, err := p.exchange(code, "wrong-verifier-wrong-verifier-wrong-verifier-1")
	mustRFC(t, err, fosite.ErrInvalidGrant)
	_, err = p.exchange(code, "")
	if err == nil {
		t.Fatal("second attempt without a verifier succeeded: PKCE downgrade")
	}
	if !errors.Is(err, fositestore.ErrPKCEConsumed) {
		t.Fatalf("error %v, want it to wrap ErrPKCEConsumed", err)
	}
}
