package reliability

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ProxyAddr is the loopback address the simulated load balancer connects
// from; BehindProxy trusts it and nothing else.
const ProxyAddr = "127.0.0.1"

// ClientFrom returns an HTTP client whose connections all come from the
// local address ip (a loopback address: 127.0.0.0/8 is all local).
func ClientFrom(ip string, timeout time.Duration) *http.Client {
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 16}}
}

// PostFormXFF is PostForm with an X-Forwarded-For header (none when xff is
// empty), as a proxy in front of authd would send it.
func PostFormXFF(ctx context.Context, c *http.Client, u string, form url.Values, id, secret, xff string) Answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return Answer{Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	return Do(c, req)
}

// BehindProxy runs authd with AUTHD_TRUSTED_PROXIES set to the simulated
// load balancer's address, every request arriving from it with
// X-Forwarded-For. Promises checked: one attacker's failed client
// authentications and password attempts refuse neither other addresses nor
// other clients, nor the attacked client's own successful authentication
// from the attacker's address; the attacker itself is limited; a spoofed
// X-Forwarded-For from a peer that is not a trusted proxy is ignored (its
// failures all count against the peer); the access log names the address
// the proxy reported.
func BehindProxy(ctx context.Context, env Env) *Report {
	rep := &Report{Name: "behind a trusted proxy"}
	start := time.Now()
	defer func() { rep.Duration = time.Since(start) }()
	key := NewSecretsKey()
	srv, err := StartServer(ctx, env, ServerConfig{Name: "A", Key: key, Extra: []string{"AUTHD_TRUSTED_PROXIES=" + ProxyAddr + "/32"}})
	if err != nil {
		rep.Problem("%v", err)
		return rep
	}
	defer srv.Kill()
	fix, err := NewFixture(ctx, env, key, srv.URL, 2, 0)
	if err != nil {
		rep.Problem("fixture: %v", err)
		return rep
	}
	proxy := ClientFrom(ProxyAddr, 10*time.Second)
	token := srv.URL + "/oauth2/token"
	cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"introspect"}}
	const attacker, bystander = "203.0.113.66", "198.51.100.7"
	send := func(id, secret, xff string, form url.Values) Answer {
		a := PostFormXFF(ctx, proxy, token, form, id, secret, xff)
		rep.Sent++
		return a
	}

	// The attacker: wrong secrets for a real client and for one that does
	// not exist, until refused.
	for _, id := range []string{fix.SvcID, "no-such-client"} {
		limited := false
		for i := 0; i < 60 && !limited; i++ {
			a := send(id, "wrong-"+RandomID(), attacker, cc)
			switch a.Status {
			case http.StatusUnauthorized:
			case http.StatusTooManyRequests:
				limited = true
			default:
				rep.Problem("attacker's wrong secret for %s: %s", id, a)
			}
		}
		rep.Faults++
		if !limited {
			rep.Problem("60 failed authentications for %s from one address were never limited", id)
		}
	}
	// Everyone else, and the real client even from the attacker's address.
	for _, c := range []struct{ what, id, secret, xff string }{
		{"the attacked client from another address", fix.SvcID, fix.SvcSecret, bystander},
		{"the attacked client from the attacker's address", fix.SvcID, fix.SvcSecret, attacker},
		{"another client from another address", fix.AppID, fix.AppSecret, bystander},
	} {
		form := cc
		if c.id == fix.AppID {
			form = url.Values{"grant_type": {"password"}, "username": {fix.Users[1].Email}, "password": {fix.Users[1].Password}, "scope": {"credits:read"}}
		}
		if a := send(c.id, c.secret, c.xff, form); !a.OK() {
			rep.Problem("%s was refused after the attack: %s", c.what, a)
		}
	}
	// Failures are counted per client: another client's failure from the
	// attacker's address is still an ordinary 401.
	if a := send(fix.AppID, "wrong-"+RandomID(), attacker, cc); a.Status != http.StatusUnauthorized {
		rep.Problem("another client's failed authentication from the attacker's address: %s, want 401", a)
	}
	// Password attempts: the per-address limit holds the attacker only.
	limited := false
	for i := 0; i < 60 && !limited; i++ {
		// A new made-up account each time: only the per-address limit can
		// stop this, not an account's backoff.
		a := send(fix.AppID, fix.AppSecret, attacker, url.Values{"grant_type": {"password"}, "username": {"nobody-" + RandomID() + "@example.test"}, "password": {"wrong " + RandomID()}})
		// 403 request_forbidden with Retry-After is the token endpoint's
		// way to refuse a limited password attempt.
		limited = a.Status == http.StatusTooManyRequests || a.Status == http.StatusForbidden
		if a.Status/100 == 5 {
			rep.Problem("password attempt from the attacker: %s", a)
		}
	}
	rep.Faults++
	if !limited {
		rep.Problem("60 password attempts from one address behind the proxy were never limited")
	}
	for i := range 5 {
		a := send(fix.AppID, fix.AppSecret, fmt.Sprintf("198.51.100.%d", 10+i), url.Values{"grant_type": {"password"},
			"username": {fix.Users[1].Email}, "password": {fix.Users[1].Password}, "scope": {"credits:read"}})
		if !a.OK() {
			rep.Problem("login from another address behind the proxy after the attacker's attempts: %s", a)
		}
	}

	// A peer that is not a trusted proxy cannot pick its address: however
	// it varies X-Forwarded-For, its failures count against itself.
	spoofer := ClientFrom("127.0.0.2", 10*time.Second)
	limited = false
	for i := 0; i < 60 && !limited; i++ {
		a := PostFormXFF(ctx, spoofer, token, cc, fix.SvcID, "wrong-"+RandomID(), fmt.Sprintf("192.0.2.%d", 1+rand.IntN(254)))
		rep.Sent++
		limited = a.Status == http.StatusTooManyRequests
	}
	rep.Faults++
	if !limited {
		rep.Problem("an untrusted peer escaped the failure limit by varying X-Forwarded-For")
	}

	// The access log names the address the proxy reported.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/healthz", nil)
	req.Header.Set("X-Forwarded-For", "198.51.100.99")
	req.Header.Set("X-Request-ID", "proxy-log-check")
	if a := Do(proxy, req); !a.OK() {
		rep.Problem("GET /healthz through the proxy: %s", a)
	}
	logged := WaitFor(ctx, 5*time.Second, func() bool {
		for _, line := range strings.Split(srv.Log(), "\n") {
			if strings.Contains(line, `"request_id":"proxy-log-check"`) && strings.Contains(line, `"remote":"198.51.100.99"`) {
				return true
			}
		}
		return false
	})
	if !logged {
		rep.Problem("the access line of a proxied request does not name the client address the proxy reported")
	}
	return rep
}
