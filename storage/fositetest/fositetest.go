// Package fositetest is the conformance suite for authd's fosite storage
// (storage/fositestore), Dex and Hydra style: a library the store's own tests
// call with a constructor, each named subtest on a fresh, empty database.
//
// RunTests encodes fosite v0.49.0's storage contract (FOSITE-NOTES §3, §9)
// and authd's own policy on top of it (refresh transactions and families,
// the facts the refresh reuse window is decided on, subject and
// client revocation, garbage collection). RunConcurrencyTests checks the
// "exactly one winner" guarantees under -race.
package fositetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/mohae/deepcopy"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/authd/authd/storage/fositestore"
)

// NewStoreFunc returns a Store on a fresh, migrated, empty database that
// lives as long as t. The suite passes the options it needs (a fake clock
// for JTI expiry).
type NewStoreFunc func(t *testing.T, opts fositestore.Options) *fositestore.Store

// Clock is a settable clock for Options.Now, safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock stopped at a fixed, realistic instant.
func NewClock() *Clock {
	return &Clock{now: time.Now().UTC().Truncate(time.Second)}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Session is the test session: openid.DefaultSession plus an Extra map, the
// shape of authd's oauth session (roles travel in both).
type Session struct {
	*openid.DefaultSession `json:"id_token"`
	Extra                  map[string]interface{} `json:"extra"`
	ClientID               string                 `json:"client_id"`
	BrowserSessionID       string                 `json:"browser_session_id,omitempty"`
}

// Clone must be overridden: the promoted DefaultSession.Clone would drop
// Extra.
func (s *Session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	return deepcopy.Copy(s).(fosite.Session)
}

// NewSession returns a session for subject with every field fosite and authd
// use filled in, expiring relative to now.
func NewSession(subject string, now time.Time) *Session {
	roles := []string{"admin", "user"}
	return &Session{
		DefaultSession: &openid.DefaultSession{
			Claims: &jwt.IDTokenClaims{
				Subject:                         subject,
				Issuer:                          "https://authd.test",
				Audience:                        []string{"app"},
				Nonce:                           "n-0S6_WzA2Mj",
				AuthTime:                        now.Add(-time.Minute),
				RequestedAt:                     now,
				AuthenticationMethodsReferences: []string{"pwd"},
				Extra:                           map[string]interface{}{"roles": roles, "email": subject + "@example.com"},
			},
			Headers: &jwt.Headers{Extra: map[string]interface{}{"typ": "JWT"}},
			ExpiresAt: map[fosite.TokenType]time.Time{
				fosite.AuthorizeCode: now.Add(10 * time.Minute),
				fosite.AccessToken:   now.Add(15 * time.Minute),
				fosite.RefreshToken:  now.Add(720 * time.Hour),
				fosite.IDToken:       now.Add(time.Hour),
			},
			Username: subject + "@example.com",
			Subject:  subject,
		},
		Extra:    map[string]interface{}{"roles": roles, "tenant": "acme", "n": 42},
		ClientID: "client",
	}
}

// EmptySession is what fosite hands Get*: a shell to decode into.
func EmptySession() *Session {
	return &Session{DefaultSession: &openid.DefaultSession{}}
}

// NewRequest returns a requester for client and session with a fresh id.
func NewRequest(client fosite.Client, sess fosite.Session, now time.Time) *fosite.Request {
	return &fosite.Request{
		ID:                RandomString(),
		RequestedAt:       now,
		Client:            client,
		RequestedScope:    fosite.Arguments{"openid", "offline_access", "profile"},
		GrantedScope:      fosite.Arguments{"openid", "offline_access"},
		RequestedAudience: fosite.Arguments{"https://api.test"},
		GrantedAudience:   fosite.Arguments{"https://api.test"},
		Form:              url.Values{"redirect_uri": {"https://app.test/cb"}, "state": {"xyz"}},
		Session:           sess,
	}
}

// RandomString returns 32 random bytes, hex-encoded (a stand-in for a token
// signature or a code).
func RandomString() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// MustCreateClient registers a confidential client id with the grants and
// scopes the suite uses.
func MustCreateClient(t testing.TB, st *fositestore.Store, id string) *fositestore.Client {
	t.Helper()
	hash, _ := fositestore.SHA256Hasher{}.Hash(context.Background(), []byte("secret-"+id))
	c := &fositestore.Client{
		ID:            id,
		SecretHash:    hash,
		Name:          "Client " + id,
		RedirectURIs:  []string{"https://app.test/cb"},
		GrantTypes:    []string{"authorization_code", "refresh_token", "client_credentials"},
		ResponseTypes: []string{"code"},
		Scopes:        []string{"openid", "offline_access", "profile"},
		Audience:      []string{"https://api.test"},
	}
	if err := st.CreateClient(context.Background(), c); err != nil {
		t.Fatalf("create client %q: %v", id, err)
	}
	return c
}

// fixture is one subtest's store, clock and client.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	st     *fositestore.Store
	clock  *Clock
	client *fositestore.Client
}

func newFixture(t *testing.T, newStore NewStoreFunc) *fixture {
	t.Helper()
	clock := NewClock()
	st := newStore(t, fositestore.Options{Now: clock.Now})
	return &fixture{t: t, ctx: context.Background(), st: st, clock: clock, client: MustCreateClient(t, st, "client")}
}

// request returns a new requester for subject on the fixture's client.
func (f *fixture) request(subject string) *fosite.Request {
	return NewRequest(f.client, NewSession(subject, f.clock.Now()), f.clock.Now())
}

// mustNil fails the test when err is not nil.
func mustNil(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// mustErr fails the test unless errors.Is(err, want).
func mustErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// mustSameRequest checks that got carries everything of want that the
// store persists, including every claim of the session.
func mustSameRequest(t testing.TB, got fosite.Requester, want *fosite.Request) {
	t.Helper()
	if got == nil {
		t.Fatal("requester is nil")
	}
	if got.GetID() != want.ID {
		t.Errorf("request id %q, want %q", got.GetID(), want.ID)
	}
	if !got.GetRequestedAt().Equal(want.RequestedAt) {
		t.Errorf("requested at %v, want %v", got.GetRequestedAt(), want.RequestedAt)
	}
	if got.GetClient() == nil || got.GetClient().GetID() != want.Client.GetID() {
		t.Errorf("client %v, want %q", got.GetClient(), want.Client.GetID())
	}
	if _, ok := got.GetClient().(*fositestore.Client); !ok {
		t.Errorf("client is %T, want *fositestore.Client", got.GetClient())
	}
	eq := func(name string, a, b any) {
		t.Helper()
		if ja, jb := mustJSON(t, a), mustJSON(t, b); ja != jb {
			t.Errorf("%s:\n got  %s\n want %s", name, ja, jb)
		}
	}
	eq("requested scopes", got.GetRequestedScopes(), want.RequestedScope)
	eq("granted scopes", got.GetGrantedScopes(), want.GrantedScope)
	eq("requested audience", got.GetRequestedAudience(), want.RequestedAudience)
	eq("granted audience", got.GetGrantedAudience(), want.GrantedAudience)
	eq("form", got.GetRequestForm(), want.Form)
	// Sessions are compared as JSON, which is what is stored: every claim,
	// header, expiry and extra survives or the strings differ.
	eq("session", got.GetSession(), want.Session)
	if s, ok := got.GetSession().(*Session); ok {
		for _, tt := range []fosite.TokenType{fosite.AccessToken, fosite.RefreshToken, fosite.AuthorizeCode} {
			if !s.GetExpiresAt(tt).Equal(want.Session.GetExpiresAt(tt)) {
				t.Errorf("expires at (%s) %v, want %v", tt, s.GetExpiresAt(tt), want.Session.GetExpiresAt(tt))
			}
		}
		if s.Extra["roles"] == nil || s.Claims == nil || s.Claims.Extra["roles"] == nil {
			t.Errorf("roles lost: extra %v, claims %v", s.Extra, s.Claims)
		}
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %T: %v", v, err)
	}
	return string(b)
}

func isErr(err, target error) bool { return errors.Is(err, target) }
