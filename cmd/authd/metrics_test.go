package main

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/internal/mailcatcher"
	"github.com/authd/authd/internal/testkit"
	"github.com/authd/authd/oauth/clients"
)

// scrape reads /metrics into series text ("name{labels}") → value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	st, body := get(t, base+"/metrics")
	if st != http.StatusOK {
		t.Fatalf("/metrics: %d", st)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// sum adds the series of metric name whose labels include every
// `key="value"` in labels; found reports whether any series matched.
func sum(m map[string]float64, name string, labels ...string) (total float64, found bool) {
	for series, v := range m {
		n, rest, _ := strings.Cut(series, "{")
		if n != name {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(rest, l)
		}
		if ok {
			total, found = total+v, true
		}
	}
	return total, found
}

// metricsEnv is the real app with mail going to a catcher and webhooks to a
// receiver that fails its first delivery.
type metricsEnv struct {
	*adminEnv
	catcher *mailcatcher.Catcher
}

func newMetricsEnv(t *testing.T) *metricsEnv {
	t.Helper()
	catcher, err := mailcatcher.New(mailcatcher.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = catcher.Close() })
	var hooks atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hooks.Add(1) == 1 {
			http.Error(w, "not yet", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(hook.Close)
	e := newAdminEnv(t,
		"AUTHD_SMTP_URL=smtp://"+catcher.Addr()+"?starttls=false",
		"AUTHD_WEBHOOK_URL="+hook.URL, "AUTHD_WEBHOOK_SECRET=metrics-test-secret",
		"AUTHD_REFRESH_REUSE_WINDOW=0s")
	return &metricsEnv{adminEnv: e, catcher: catcher}
}

// moved runs act and fails unless metric (filtered by labels) grew by at
// least want.
func (e *metricsEnv) moved(t *testing.T, want float64, name string, labels []string, act func()) {
	t.Helper()
	before, _ := sum(scrape(t, e.ts.URL), name, labels...)
	act()
	after, found := sum(scrape(t, e.ts.URL), name, labels...)
	if !found {
		t.Fatalf("%s%v is not on /metrics", name, labels)
	}
	if after-before < want {
		t.Errorf("%s%v moved by %v, want at least %v", name, labels, after-before, want)
	}
}

// eventually polls /metrics until metric (filtered by labels) reaches at
// least want: the outbox worker delivers asynchronously.
func (e *metricsEnv) eventually(t *testing.T, want float64, name string, labels ...string) {
	t.Helper()
	testkit.Eventually(t, 20*time.Second, name+strings.Join(labels, ","), func() bool {
		v, _ := sum(scrape(t, e.ts.URL), name, labels...)
		return v >= want
	})
}

// mailToken waits for a mail to addr with a link to path and returns the
// link's token.
func (e *metricsEnv) mailToken(t *testing.T, addr, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for n := 1; ; n++ {
		msgs, err := e.catcher.Wait(ctx, n)
		if err != nil {
			t.Fatalf("no mail to %s with a %s link: %v", addr, path, err)
		}
		for _, m := range msgs {
			for _, l := range m.Links {
				if u, err := url.Parse(l); err == nil && m.To[0] == addr && u.Path == path {
					return u.Query().Get("token")
				}
			}
		}
	}
}

func lbl(kv ...string) []string {
	var out []string
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, kv[i]+`="`+kv[i+1]+`"`)
	}
	return out
}

func TestMetrics_ActionsMoveTheirSeries(t *testing.T) {
	e := newMetricsEnv(t)
	base := e.ts.URL
	ctx := context.Background()

	t.Run("LoginPage", func(t *testing.T) {
		e.mustUser("dave@example.com", userPass)
		c := browser(t)
		e.moved(t, 1, "authd_sessions_active", nil, func() {
			e.moved(t, 1, "authd_logins_total", lbl("outcome", "success"), func() {
				if resp := postLogin(t, c, base, "dave@example.com", userPass); resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("login: %d", resp.StatusCode)
				}
			})
		})
		e.moved(t, 1, "authd_logins_total", lbl("outcome", "invalid_credentials"), func() {
			postLogin(t, browser(t), base, "dave@example.com", "not the password")
		})
		frank := e.mustUser("frank@example.com", userPass)
		if _, err := e.accts.SetDisabled(ctx, audit.Event{}, frank.ID, true, false); err != nil {
			t.Fatal(err)
		}
		e.moved(t, 1, "authd_logins_total", lbl("outcome", "disabled"), func() {
			postLogin(t, browser(t), base, "frank@example.com", userPass)
		})
		// Repeated failures lock the account's password check (throttled);
		// then the per-IP page limit refuses attempts outright (rate_limited).
		for _, outcome := range []string{"throttled", "rate_limited"} {
			e.moved(t, 1, "authd_logins_total", lbl("outcome", outcome), func() {
				e.until(t, "authd_logins_total", lbl("outcome", outcome), func(i int) {
					postLogin(t, browser(t), base, "grace@example.com", "guess "+strconv.Itoa(i))
				})
			})
		}
	})

	t.Run("PasswordGrant", func(t *testing.T) {
		e.mustUser("heidi@example.com", userPass)
		e.moved(t, 1, "authd_logins_total", lbl("outcome", "success"), func() { e.passwordToken("heidi@example.com", userPass, "openid") })
		e.moved(t, 1, "authd_logins_total", lbl("outcome", "invalid_credentials"), func() {
			if st := e.passwordGrantStatus("heidi@example.com", "wrong password!"); st == http.StatusOK {
				t.Fatal("wrong password accepted")
			}
		})
		e.moved(t, 1, "authd_oauth_tokens_issued_total", lbl("grant_type", "password", "client_id", e.appID), func() {
			e.passwordToken("heidi@example.com", userPass, "openid")
		})
	})

	t.Run("RegistrationVerificationAndOutbox", func(t *testing.T) {
		reg := func(email, pw string, want int) {
			if st, b := e.call("POST", "/api/v1/register", "", map[string]string{"email": email, "password": pw}); st != want {
				t.Fatalf("register %s: %d %s", email, st, b)
			}
		}
		e.moved(t, 1, "authd_email_verifications_total", lbl("stage", "requested"), func() {
			e.moved(t, 1, "authd_registrations_total", lbl("outcome", "created"), func() { reg("ivan@example.com", "a fine long password", 201) })
		})
		e.moved(t, 1, "authd_registrations_total", lbl("outcome", "email_taken"), func() { reg("ivan@example.com", "a fine long password", 409) })
		e.moved(t, 1, "authd_registrations_total", lbl("outcome", "invalid"), func() { reg("judy@example.com", "short", 400) })
		tok := e.mailToken(t, "ivan@example.com", "/verify-email")
		e.moved(t, 1, "authd_email_verifications_total", lbl("stage", "completed"), func() {
			e.must(200, "POST", "/api/v1/email/verify", "", map[string]string{"token": tok}, nil)
		})
		e.eventually(t, 1, "authd_outbox_delivery_seconds_count", lbl("kind", "mail")...)
		// The webhook receiver fails its first delivery; the retry succeeds.
		e.eventually(t, 1, "authd_outbox_delivery_failures_total", lbl("kind", "webhook")...)
		e.eventually(t, 1, "authd_outbox_delivery_seconds_count", lbl("kind", "webhook")...)
		for _, kind := range []string{"mail", "webhook"} {
			if _, ok := sum(scrape(t, base), "authd_outbox_pending", lbl("kind", kind)...); !ok {
				t.Errorf("authd_outbox_pending{kind=%q} missing", kind)
			}
		}
	})

	t.Run("PasswordReset", func(t *testing.T) {
		e.mustUser("mallory@example.com", userPass)
		forgot := func(email string) {
			e.must(202, "POST", "/api/v1/password/forgot", "", map[string]string{"email": email}, nil)
		}
		e.moved(t, 1, "authd_password_resets_total", lbl("stage", "sent"), func() {
			e.moved(t, 2, "authd_password_resets_total", lbl("stage", "requested"), func() {
				forgot("mallory@example.com")
				forgot("nobody@example.com")
			})
		})
		tok := e.mailToken(t, "mallory@example.com", "/password/reset")
		e.moved(t, 1, "authd_password_resets_total", lbl("stage", "completed"), func() {
			e.must(200, "POST", "/api/v1/password/reset", "", map[string]string{"token": tok, "password": "a brand new password"}, nil)
		})
	})

	t.Run("OAuth", func(t *testing.T) {
		svcID, svcSecret := mustClient(t, e.db.URL, clients.Spec{Name: "svc", GrantTypes: []string{"client_credentials"}, Scopes: []string{"introspect"}})
		e.moved(t, 1, "authd_oauth_tokens_issued_total", lbl("grant_type", "client_credentials", "client_id", svcID), func() {
			if st, err := clientCredentialsToken(base, svcID, svcSecret); err != nil || st != http.StatusOK {
				t.Fatalf("client_credentials: %d %v", st, err)
			}
		})
		e.mustUser("niaj@example.com", userPass)
		at, rt := e.passwordToken("niaj@example.com", userPass, "openid offline_access")
		e.moved(t, 1, "authd_oauth_introspections_total", lbl("result", "active"), func() { e.introspect(at) })
		e.moved(t, 1, "authd_oauth_introspections_total", lbl("result", "inactive"), func() { e.introspect("not-a-token") })
		e.moved(t, 1, "authd_oauth_introspections_total", lbl("result", "unauthorized"), func() {
			if st, _ := e.tokenEndpoint("/oauth2/introspect", svcID, "wrong secret", url.Values{"token": {at}}); st != http.StatusUnauthorized {
				t.Fatalf("introspection with a wrong secret: %d", st)
			}
		})
		e.moved(t, 1, "authd_oauth_tokens_issued_total", lbl("grant_type", "refresh_token", "client_id", e.appID), func() {
			if st, out := e.refresh(rt); st != http.StatusOK {
				t.Fatalf("refresh: %d %v", st, out)
			}
		})
		e.moved(t, 1, "authd_oauth_refresh_reuse_detected_total", nil, func() {
			if st, _ := e.refresh(rt); st != http.StatusBadRequest {
				t.Fatalf("reused refresh token: %d, want 400", st)
			}
		})
		e.moved(t, 1, "authd_oauth_revocations_total", lbl("result", "ok"), func() {
			if st, out := e.tokenEndpoint("/oauth2/revoke", e.appID, e.appSecret, url.Values{"token": {at}}); st != http.StatusOK {
				t.Fatalf("revoke: %d %v", st, out)
			}
		})
	})

	t.Run("Credits", func(t *testing.T) {
		u := e.mustUser("olivia@example.com", userPass)
		_, svc := e.clientToken("credits:charge", "credits:grant")
		path := "/api/v1/users/" + u.ID + "/credits/"
		e.moved(t, 5, "authd_ledger_credits_granted_total", nil, func() {
			e.must(201, "POST", path+"grant", svc, map[string]any{"amount": 5, "reference": "g1"}, nil)
		})
		e.moved(t, 2, "authd_ledger_credits_spent_total", nil, func() {
			e.must(201, "POST", path+"spend", svc, map[string]any{"amount": 2, "reference": "s1"}, nil)
		})
		e.moved(t, 1, "authd_ledger_insufficient_credits_total", nil, func() {
			e.must(409, "POST", path+"spend", svc, map[string]any{"amount": 50, "reference": "s2"}, nil)
		})
		e.moved(t, 1, "authd_ledger_reference_conflicts_total", nil, func() {
			e.must(409, "POST", path+"spend", svc, map[string]any{"amount": 3, "reference": "s1"}, nil)
		})
	})

	// Last: it spends the per-IP budget of the password grant.
	t.Run("PasswordGrantRateLimited", func(t *testing.T) {
		e.moved(t, 1, "authd_logins_total", lbl("outcome", "rate_limited"), func() {
			e.until(t, "authd_logins_total", lbl("outcome", "rate_limited"), func(int) {
				e.passwordGrantStatus("heidi@example.com", "wrong password!")
			})
		})
	})
}

// until repeats act (at most 60 times) until metric (filtered by labels)
// has grown.
func (e *metricsEnv) until(t *testing.T, name string, labels []string, act func(i int)) {
	t.Helper()
	start, _ := sum(scrape(t, e.ts.URL), name, labels...)
	for i := 0; i < 60; i++ {
		act(i)
		if v, _ := sum(scrape(t, e.ts.URL), name, labels...); v > start {
			return
		}
	}
	t.Fatalf("%s%v did not move in 60 attempts", name, labels)
}
