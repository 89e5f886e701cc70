package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// NewClient returns an HTTP client whose every new connection comes from a
// random 127.x.y.z address. authd limits logins and registrations per
// client IP; spreading the load over the loopback /8 keeps those limits (which
// other tests cover) out of the way. fresh disables keep-alives, so each
// request is a new connection and a new address.
func NewClient(timeout time.Duration, fresh bool) *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		src := net.IPv4(127, byte(1+rand.IntN(250)), byte(rand.IntN(256)), byte(1+rand.IntN(250)))
		d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: src}}
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:         dial,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
			DisableKeepAlives:   fresh,
		},
	}
}

// Answer is one HTTP exchange's outcome.
type Answer struct {
	Status int
	Body   []byte
	Err    error // transport error (no status)
}

// OK reports a 2xx.
func (a Answer) OK() bool { return a.Err == nil && a.Status >= 200 && a.Status < 300 }

func (a Answer) String() string {
	if a.Err != nil {
		return "error: " + a.Err.Error()
	}
	b := string(a.Body)
	if len(b) > 300 {
		b = b[:300] + "…"
	}
	return fmt.Sprintf("%d %s", a.Status, strings.TrimSpace(b))
}

// Decode unmarshals the body into v.
func (a Answer) Decode(v any) error {
	if a.Err != nil {
		return a.Err
	}
	return json.Unmarshal(a.Body, v)
}

// Do sends req and reads the whole answer.
func Do(c *http.Client, req *http.Request) Answer {
	resp, err := c.Do(req)
	if err != nil {
		return Answer{Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Answer{Status: resp.StatusCode, Err: fmt.Errorf("reading body: %w", err)}
	}
	return Answer{Status: resp.StatusCode, Body: b}
}

// PostForm posts form to u with HTTP basic client authentication.
func PostForm(ctx context.Context, c *http.Client, u string, form url.Values, id, secret string) Answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return Answer{Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// Token requests are safe to resend (a refresh within the reuse window
	// returns the same pair); this lets Go's transport retry one sent on a
	// keep-alive connection the server closed before reading it.
	req.Header.Set("Idempotency-Key", RandomID())
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	return Do(c, req)
}

// JSON sends v as JSON with an optional bearer token. idem marks the request
// as safe to resend (Go's transport then retries it on a keep-alive
// connection the server closed before reading it).
func JSON(ctx context.Context, c *http.Client, method, u, bearer string, v any, idem string) Answer {
	var body io.Reader
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			return Answer{Err: err}
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return Answer{Err: err}
	}
	if v != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	return Do(c, req)
}

// Token is a token endpoint response.
type Token struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	Error        string `json:"error"`
}

// ClientCredentials asks base for a client_credentials token.
func ClientCredentials(ctx context.Context, c *http.Client, base, id, secret, scope string) (Token, Answer) {
	a := PostForm(ctx, c, base+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}, id, secret)
	var t Token
	_ = a.Decode(&t)
	return t, a
}

// PasswordGrant logs a user in through a first-party client.
func PasswordGrant(ctx context.Context, c *http.Client, base, id, secret, user, password, scope string) (Token, Answer) {
	a := PostForm(ctx, c, base+"/oauth2/token", url.Values{"grant_type": {"password"}, "username": {user}, "password": {password}, "scope": {scope}}, id, secret)
	var t Token
	_ = a.Decode(&t)
	return t, a
}

// Refresh redeems a refresh token.
func Refresh(ctx context.Context, c *http.Client, base, id, secret, rt string) (Token, Answer) {
	a := PostForm(ctx, c, base+"/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, id, secret)
	var t Token
	_ = a.Decode(&t)
	return t, a
}

// Spend debits amount from user under ref, as the service client.
func Spend(ctx context.Context, c *http.Client, base, bearer, user, ref string, amount int64) Answer {
	return JSON(ctx, c, http.MethodPost, base+"/api/v1/users/"+user+"/credits/spend", bearer,
		map[string]any{"amount": amount, "reference": ref, "description": "reliability"}, ref)
}

// Grant credits user with amount under ref, as the service client.
func Grant(ctx context.Context, c *http.Client, base, bearer, user, ref string, amount int64) Answer {
	return JSON(ctx, c, http.MethodPost, base+"/api/v1/users/"+user+"/credits/grant", bearer,
		map[string]any{"amount": amount, "reference": ref, "description": "reliability"}, ref)
}

// Register signs a user up through the public JSON API.
func Register(ctx context.Context, c *http.Client, base, email, password string) Answer {
	return JSON(ctx, c, http.MethodPost, base+"/api/v1/register", "", map[string]any{"email": email, "password": password, "name": "Reliability"}, "")
}

// Introspect asks base about token, authenticated as a resource server.
func Introspect(ctx context.Context, c *http.Client, base, id, secret, token string) (bool, Answer) {
	a := PostForm(ctx, c, base+"/oauth2/introspect", url.Values{"token": {token}}, id, secret)
	var r struct {
		Active bool `json:"active"`
	}
	_ = a.Decode(&r)
	return r.Active, a
}

// Metric reads one unlabelled sample from base's /metrics.
func Metric(ctx context.Context, c *http.Client, base, name string) (float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	a := Do(c, req)
	if !a.OK() {
		return 0, fmt.Errorf("GET /metrics: %s", a)
	}
	for _, line := range strings.Split(string(a.Body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				return 0, err
			}
			return f, nil
		}
	}
	return 0, fmt.Errorf("metric %s not exported", name)
}

// RandomID returns a short random identifier for references and emails.
func RandomID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 12)
	for i := range b {
		b[i] = alphabet[rand.IntN(len(alphabet))]
	}
	return string(b)
}
