package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// benchRedirect is the web client's redirect URI; nothing listens there:
// the flow stops at the redirect and reads the code from Location.
const benchRedirect = "http://127.0.0.1:9/cb"

// webScopes are what the web client may ask for, as a typical app would: an
// ID token, a refresh token and an API scope. oauthScopes leave out openid
// (no ID token, so no RS256 signature, on each refresh).
const (
	webScopes   = "openid offline_access credits:read"
	oauthScopes = "offline_access credits:read"
)

// tokenResponse is the part of a token endpoint answer the bench reads.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	ExpiresIn    int64  `json:"expires_in"` // seconds; 0 when not given
}

func decodeToken(r *response, what string) (*tokenResponse, error) {
	if r.Status != http.StatusOK {
		return nil, r.unexpected(what)
	}
	var t tokenResponse
	if err := json.Unmarshal(r.Body, &t); err != nil || t.AccessToken == "" {
		return nil, r.unexpected(what + ": no access_token")
	}
	return &t, nil
}

// browser is a cookie store for one simulated browser. It sends Secure
// cookies over http://127.0.0.1, as browsers do for loopback origins
// (net/http/cookiejar would not).
type browser struct {
	cookies map[string]*http.Cookie
}

func newBrowser() *browser { return &browser{cookies: map[string]*http.Cookie{}} }

func (b *browser) list() []*http.Cookie {
	out := make([]*http.Cookie, 0, len(b.cookies))
	for _, c := range b.cookies {
		out = append(out, &http.Cookie{Name: c.Name, Value: c.Value})
	}
	return out
}

func (b *browser) keep(r *response) {
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
}

func (b *browser) get(ctx context.Context, c *http.Client, u string) (*response, error) {
	r, err := get(ctx, c, u, b.list())
	if err == nil {
		b.keep(r)
	}
	return r, err
}

func (b *browser) post(ctx context.Context, c *http.Client, u string, form url.Values) (*response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, ck := range b.list() {
		req.AddCookie(ck)
	}
	r, err := do(c, req)
	if err == nil {
		b.keep(r)
	}
	return r, err
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// hiddenFields returns the hidden inputs of the form that posts to action.
func hiddenFields(page []byte, action string) url.Values {
	s := string(page)
	if i := strings.Index(s, `action="`+action+`"`); i >= 0 {
		s = s[i:]
		if j := strings.Index(s, "</form>"); j >= 0 {
			s = s[:j]
		}
	}
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(s, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

func randToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// codeFlow is the web client's side of the authorization-code flow.
type codeFlow struct {
	base, clientID, secret string
}

// authorize starts a code flow in b, logging in (when the page asks) as
// email and consenting (when asked), and exchanges the code. It returns the
// tokens and the number of HTTP requests it took.
func (f *codeFlow) run(ctx context.Context, c *http.Client, b *browser, email, password, scope string, forceConsent bool) (*tokenResponse, int, error) {
	verifier := randToken()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {f.clientID}, "redirect_uri": {benchRedirect},
		"scope": {scope}, "state": {randToken()}, "nonce": {randToken()},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	if forceConsent {
		q.Set("prompt", "consent")
	}
	reqs := 0
	r, err := b.get(ctx, c, f.base+"/oauth2/auth?"+q.Encode())
	reqs++
	if err != nil {
		return nil, reqs, err
	}
	// Follow local redirects (to /login and back) and answer the login and
	// consent pages, until the redirect to the client.
	for hop := 0; hop < 8; hop++ {
		switch {
		case r.Status == http.StatusSeeOther || r.Status == http.StatusFound:
			loc := r.Header.Get("Location")
			if strings.HasPrefix(loc, benchRedirect) {
				return f.exchange(ctx, c, loc, q.Get("state"), verifier, reqs)
			}
			if !strings.HasPrefix(loc, "/") {
				return nil, reqs, fmt.Errorf("authorize: unexpected redirect to %q", loc)
			}
			r, err = b.get(ctx, c, f.base+loc)
		case r.Status == http.StatusOK && strings.Contains(string(r.Body), `action="/login"`):
			form := hiddenFields(r.Body, "/login")
			form.Set("email", email)
			form.Set("password", password)
			r, err = b.post(ctx, c, f.base+"/login", form)
		case r.Status == http.StatusOK && strings.Contains(string(r.Body), `action="/consent"`):
			form := hiddenFields(r.Body, "/consent")
			form.Set("decision", "allow")
			r, err = b.post(ctx, c, f.base+"/consent", form)
		default:
			return nil, reqs, r.unexpected("authorize")
		}
		reqs++
		if err != nil {
			return nil, reqs, err
		}
	}
	return nil, reqs, errors.New("authorize: too many hops")
}

func (f *codeFlow) exchange(ctx context.Context, c *http.Client, loc, state, verifier string, reqs int) (*tokenResponse, int, error) {
	u, err := url.Parse(loc)
	if err != nil {
		return nil, reqs, err
	}
	if e := u.Query().Get("error"); e != "" {
		return nil, reqs, fmt.Errorf("authorize: %s: %s", e, u.Query().Get("error_description"))
	}
	if u.Query().Get("state") != state {
		return nil, reqs, errors.New("authorize: state mismatch")
	}
	r, err := postForm(ctx, c, f.base+"/oauth2/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")},
		"redirect_uri": {benchRedirect}, "code_verifier": {verifier},
	}, f.clientID, f.secret)
	reqs++
	if err != nil {
		return nil, reqs, err
	}
	t, err := decodeToken(r, "code exchange")
	return t, reqs, err
}

// refresh rotates a refresh token.
func (f *codeFlow) refresh(ctx context.Context, c *http.Client, rt string) (*tokenResponse, error) {
	r, err := postForm(ctx, c, f.base+"/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, f.clientID, f.secret)
	if err != nil {
		return nil, err
	}
	t, err := decodeToken(r, "refresh")
	if err == nil && t.RefreshToken == "" {
		return nil, r.unexpected("refresh: no refresh_token")
	}
	return t, err
}
