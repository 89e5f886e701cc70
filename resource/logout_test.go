package resource_test

import (
	"context"
	"errors"
	"github.com/authd/authd/internal/testkit"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authd/authd/resource"
)

const logoutClient = "app-1"

func logoutClaims(f *fakeIssuer, now time.Time, jti string) map[string]any {
	return map[string]any{
		"iss": f.issuer, "aud": logoutClient, "sub": "user-1", "sid": "sess-1", "jti": jti,
		"iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
		"events": map[string]any{resource.BackchannelLogoutEvent: map[string]any{}},
	}
}

func mustLogoutVerifier(t *testing.T, f *fakeIssuer, c *testkit.Clock) *resource.LogoutVerifier {
	t.Helper()
	v, err := resource.NewLogoutVerifier(resource.Config{Issuer: f.issuer, Audience: logoutClient, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestLogoutVerifier_OK(t *testing.T) {
	f, c := newFakeIssuer(t), testkit.NewClock(time.Now())
	k := newRSAKey(t, "k1")
	f.publish(k)
	v := mustLogoutVerifier(t, f, c)
	got, err := v.Verify(context.Background(), sign(t, k, "logout+jwt", logoutClaims(f, c.Now(), "j1")))
	if err != nil || got.Subject != "user-1" || got.SessionID != "sess-1" || got.TokenID != "j1" {
		t.Fatalf("%+v, %v", got, err)
	}
}

// Each protection of §2.6 refuses the token that lacks it.
func TestLogoutVerifier_Refuses(t *testing.T) {
	f, c := newFakeIssuer(t), testkit.NewClock(time.Now())
	k := newECKey(t, "k1")
	f.publish(k)
	stranger := newECKey(t, "k2") // not published
	for i, tc := range []struct {
		name string
		key  signingKey
		typ  string
		edit func(m map[string]any)
	}{
		{"IDTokenTyp", k, "JWT", nil},
		{"AccessTokenTyp", k, "at+jwt", nil},
		{"NoTyp", k, "", nil},
		{"UnknownKey", stranger, "logout+jwt", nil},
		{"OtherIssuer", k, "logout+jwt", func(m map[string]any) { m["iss"] = "https://evil.example" }},
		{"OtherAudience", k, "logout+jwt", func(m map[string]any) { m["aud"] = "app-2" }},
		{"Expired", k, "logout+jwt", func(m map[string]any) { m["exp"] = c.Now().Add(-time.Hour).Unix() }},
		{"NoExp", k, "logout+jwt", func(m map[string]any) { delete(m, "exp") }},
		{"NoIat", k, "logout+jwt", func(m map[string]any) { delete(m, "iat") }},
		{"FutureIat", k, "logout+jwt", func(m map[string]any) { m["iat"] = c.Now().Add(time.Hour).Unix() }},
		{"NoJTI", k, "logout+jwt", func(m map[string]any) { delete(m, "jti") }},
		{"NoEvent", k, "logout+jwt", func(m map[string]any) { delete(m, "events") }},
		{"OtherEvent", k, "logout+jwt", func(m map[string]any) { m["events"] = map[string]any{"urn:other": map[string]any{}} }},
		{"EventNotAnObject", k, "logout+jwt", func(m map[string]any) {
			m["events"] = map[string]any{resource.BackchannelLogoutEvent: "yes"}
		}},
		{"Nonce", k, "logout+jwt", func(m map[string]any) { m["nonce"] = "n-1" }},
		{"NeitherSubNorSID", k, "logout+jwt", func(m map[string]any) { delete(m, "sub"); delete(m, "sid") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := mustLogoutVerifier(t, f, c)
			m := logoutClaims(f, c.Now(), "j"+string(rune('a'+i)))
			if tc.edit != nil {
				tc.edit(m)
			}
			if _, err := v.Verify(context.Background(), sign(t, tc.key, tc.typ, m)); !errors.Is(err, resource.ErrInvalidToken) {
				t.Fatalf("accepted or wrong error: %v", err)
			}
		})
	}
}

// A jti is accepted once, even by concurrent deliveries of one token.
func TestLogoutVerifier_JTIOnceUnderConcurrency(t *testing.T) {
	f, c := newFakeIssuer(t), testkit.NewClock(time.Now())
	k := newECKey(t, "k1")
	f.publish(k)
	v := mustLogoutVerifier(t, f, c)
	tok := sign(t, k, "logout+jwt", logoutClaims(f, c.Now(), "once"))
	var ok, replayed atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := v.Verify(context.Background(), tok)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, resource.ErrReplayedLogoutToken):
				replayed.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || replayed.Load() != 15 {
		t.Fatalf("accepted %d, replays %d", ok.Load(), replayed.Load())
	}
}

func TestLogoutHandler_Answers(t *testing.T) {
	f, c := newFakeIssuer(t), testkit.NewClock(time.Now())
	k := newECKey(t, "k1")
	f.publish(k)
	v := mustLogoutVerifier(t, f, c)
	var ended []string
	var fail bool
	srv := httptest.NewServer(v.LogoutHandler(func(_ context.Context, lc *resource.LogoutClaims) error {
		if fail {
			return errors.New("store down")
		}
		ended = append(ended, lc.SessionID)
		return nil
	}))
	t.Cleanup(srv.Close)
	post := func(tok string) (int, string) {
		resp, err := http.Post(srv.URL, "application/x-www-form-urlencoded", strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Cache-Control")
	}
	if st, cc := post(sign(t, k, "logout+jwt", logoutClaims(f, c.Now(), "h1"))); st != http.StatusOK || cc != "no-store" || len(ended) != 1 {
		t.Fatalf("valid: %d %q %v", st, cc, ended)
	}
	if st, _ := post("garbage"); st != http.StatusBadRequest {
		t.Errorf("garbage: %d", st)
	}
	fail = true
	if st, _ := post(sign(t, k, "logout+jwt", logoutClaims(f, c.Now(), "h2"))); st == http.StatusOK {
		t.Errorf("a failed local logout answered 200")
	}
	if resp, err := http.Get(srv.URL); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %v %v", resp, err)
	}
}
