package oauth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/authd/authd/oauth/clients"
)

// parEndpoint reads the PAR endpoint from discovery, as a client would.
func parEndpoint(t *testing.T, e *env) string {
	t.Helper()
	resp, err := http.Get(e.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	ep, _ := doc["pushed_authorization_request_endpoint"].(string)
	if ep != e.issuer+"/oauth2/par" || doc["require_pushed_authorization_requests"] != false {
		t.Fatalf("discovery: endpoint %q, required %v", ep, doc["require_pushed_authorization_requests"])
	}
	return ep
}

// push sends cfg's authorization parameters to the PAR endpoint with client
// authentication (client_secret_basic, as x/oauth2 does at the token
// endpoint) and returns the status and JSON answer.
func push(t *testing.T, endpoint, id, secret string, params url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(params.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// pushedParams is what x/oauth2 would put in the authorization URL.
func pushedParams(cfg *oauth2.Config, state, verifier string, extra ...oauth2.AuthCodeOption) url.Values {
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}, extra...)
	u, _ := url.Parse(cfg.AuthCodeURL(state, opts...))
	q := u.Query()
	q.Del("client_id") // sent as the client authentication
	return q
}

func parAuthURL(e *env, clientID, requestURI string) string {
	return e.issuer + "/oauth2/auth?" + url.Values{"client_id": {clientID}, "request_uri": {requestURI}}.Encode()
}

// errorPage fetches authURL and fails unless authd answers with an error
// page of its own (no redirect to the client) naming code.
func errorPage(t *testing.T, b *browser, authURL, code string) {
	t.Helper()
	resp, page := b.get(authURL)
	if resp.StatusCode < 400 || resp.Header.Get("Location") != "" || !strings.Contains(page, code) {
		t.Fatalf("want an error page with %s, got %d Location=%q\n%s", code, resp.StatusCode, resp.Header.Get("Location"), page)
	}
}

// A PAR login with x/oauth2 and go-oidc: push, log in and consent through
// the request_uri, exchange the code; the request_uri is then spent.
func TestPAR_CodeFlowWithRealClients(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	client, secret := e.webClient()
	endpoint := parEndpoint(t, e)
	provider, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &oauth2.Config{ClientID: client.ID, ClientSecret: secret, Endpoint: provider.Endpoint(),
		RedirectURL: redirectURI, Scopes: []string{oidc.ScopeOpenID, "email", "offline_access"}}
	verifier, state, nonce := oauth2.GenerateVerifier(), randString(), randString()

	st, out := push(t, endpoint, client.ID, secret, pushedParams(cfg, state, verifier, oidc.Nonce(nonce)))
	uri, _ := out["request_uri"].(string)
	if st != http.StatusCreated || !strings.HasPrefix(uri, "urn:ietf:params:oauth:request_uri:") || out["expires_in"] != float64(300) {
		t.Fatalf("push: %d %v", st, out)
	}
	b := e.browser()
	q := e.authorize(b, parAuthURL(e, client.ID, uri))
	if q.Get("state") != state || q.Get("code") == "" || q.Get("iss") != e.issuer {
		t.Fatalf("authorization response %v", q)
	}
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: client.ID}).Verify(ctx, tok.Extra("id_token").(string))
	if err != nil || idt.Subject != e.userID || idt.Nonce != nonce {
		t.Fatalf("ID token: %v %+v", err, idt)
	}
	if tok.RefreshToken == "" {
		t.Error("no refresh token for offline_access")
	}

	// Spent: the same browser (logged in, consent remembered) and a new one.
	errorPage(t, b, parAuthURL(e, client.ID, uri), "invalid_request_uri")
	errorPage(t, e.browser(), parAuthURL(e, client.ID, uri), "invalid_request_uri")
}

// Every way of calling /oauth2/par as the wrong client is refused, and a
// request_uri works only for the client that pushed it.
func TestPAR_WrongClient(t *testing.T) {
	e := newEnv(t)
	client, secret := e.webClient()
	other, otherSecret := e.webClient()
	endpoint := parEndpoint(t, e)
	cfg := &oauth2.Config{ClientID: client.ID, RedirectURL: redirectURI, Scopes: []string{"openid"}}
	params := pushedParams(cfg, randString(), oauth2.GenerateVerifier())

	for name, tc := range map[string]struct {
		id, secret string
		form       url.Values
	}{
		"NoAuthentication":   {form: params},
		"WrongSecret":        {id: client.ID, secret: otherSecret, form: params},
		"UnknownClient":      {id: "nobody", secret: secret, form: params},
		"ClientIDOnlyInBody": {form: func() url.Values { f := cloneValues(params); f.Set("client_id", client.ID); return f }()},
	} {
		t.Run(name, func(t *testing.T) {
			st, out := push(t, endpoint, tc.id, tc.secret, tc.form)
			if st != http.StatusUnauthorized || out["error"] != "invalid_client" || out["request_uri"] != nil {
				t.Fatalf("%d %v", st, out)
			}
		})
	}
	t.Run("ScopeNotRegistered", func(t *testing.T) {
		f := cloneValues(params)
		f.Set("scope", "openid admin")
		if st, out := push(t, endpoint, client.ID, secret, f); st != http.StatusBadRequest || out["error"] != "invalid_scope" {
			t.Fatalf("%d %v", st, out)
		}
	})
	t.Run("RedirectURINotRegistered", func(t *testing.T) {
		f := cloneValues(params)
		f.Set("redirect_uri", "https://evil.example/cb")
		if st, out := push(t, endpoint, client.ID, secret, f); st != http.StatusBadRequest || out["request_uri"] != nil {
			t.Fatalf("%d %v", st, out)
		}
	})
	t.Run("LoopbackPortOfConfidentialClient", func(t *testing.T) {
		f := cloneValues(params)
		f.Set("redirect_uri", "http://127.0.0.1:10/cb")
		if st, out := push(t, endpoint, client.ID, secret, f); st != http.StatusBadRequest || out["request_uri"] != nil {
			t.Fatalf("%d %v", st, out)
		}
	})
	t.Run("NoPKCE", func(t *testing.T) {
		f := cloneValues(params)
		f.Del("code_challenge")
		if st, out := push(t, endpoint, client.ID, secret, f); st != http.StatusBadRequest || out["error"] != "invalid_request" {
			t.Fatalf("%d %v", st, out)
		}
	})
	t.Run("RequestURIOfAnotherClient", func(t *testing.T) {
		st, out := push(t, endpoint, client.ID, secret, params)
		if st != http.StatusCreated {
			t.Fatalf("push: %d %v", st, out)
		}
		uri := out["request_uri"].(string)
		b := e.browser()
		errorPage(t, b, parAuthURL(e, other.ID, uri), "invalid_request")
		// The attempt did not spend it: its own client still completes.
		if q := e.authorize(b, parAuthURL(e, client.ID, uri)); q.Get("code") == "" {
			t.Fatalf("own client after the attempt: %v", q)
		}
	})
	t.Run("UnknownRequestURI", func(t *testing.T) {
		errorPage(t, e.browser(), parAuthURL(e, client.ID, "urn:ietf:params:oauth:request_uri:"+randString()), "invalid_request_uri")
	})
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// Parameters in the front channel next to a request_uri are ignored: the
// redirect, scope, state and PKCE challenge are the pushed ones.
func TestPAR_FrontChannelParametersIgnored(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	client, secret := e.webClient()
	cfg := &oauth2.Config{ClientID: client.ID, ClientSecret: secret, RedirectURL: redirectURI, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{TokenURL: e.issuer + "/oauth2/token"}}
	verifier, state := oauth2.GenerateVerifier(), randString()
	st, out := push(t, parEndpoint(t, e), client.ID, secret, pushedParams(cfg, state, verifier))
	if st != http.StatusCreated {
		t.Fatalf("push: %d %v", st, out)
	}
	_, evilChallenge := pkce()
	u := parAuthURL(e, client.ID, out["request_uri"].(string)) + "&" + url.Values{
		"redirect_uri": {"http://127.0.0.1:9/cb?evil=1"}, "scope": {"openid profile email roles"}, "state": {"attacker-state"},
		"code_challenge": {evilChallenge}, "code_challenge_method": {"S256"}, "prompt": {"none"}}.Encode()
	q := e.authorize(e.browser(), u)
	if q.Get("state") != state || q.Get("evil") != "" || q.Get("code") == "" {
		t.Fatalf("authorization response %v", q)
	}
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange with the pushed verifier: %v", err)
	}
	if sc, _ := tok.Extra("scope").(string); sc != "openid" {
		t.Errorf("granted scope %q, want the pushed openid only", sc)
	}
}

// A request_uri is refused once its lifetime has passed.
func TestPAR_Expires(t *testing.T) {
	e := newEnv(t)
	client, secret := e.webClient()
	cfg := &oauth2.Config{ClientID: client.ID, RedirectURL: redirectURI, Scopes: []string{"openid"}}
	st, out := push(t, parEndpoint(t, e), client.ID, secret, pushedParams(cfg, randString(), oauth2.GenerateVerifier()))
	if st != http.StatusCreated {
		t.Fatalf("push: %d %v", st, out)
	}
	e.clock.Advance(5*time.Minute + time.Second)
	errorPage(t, e.browser(), parAuthURL(e, client.ID, out["request_uri"].(string)), "invalid_request_uri")
}

// Twenty browsers of one logged-in user racing with one request_uri get
// exactly one authorization code.
func TestPAR_ConcurrentUseYieldsOneCode(t *testing.T) {
	e := newEnv(t)
	client, secret := e.mustClient(clients.Spec{RedirectURIs: []string{redirectURI}, FirstParty: true,
		GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid"}})
	cfg := &oauth2.Config{ClientID: client.ID, RedirectURL: redirectURI, Scopes: []string{"openid"}}
	st, out := push(t, parEndpoint(t, e), client.ID, secret, pushedParams(cfg, randString(), oauth2.GenerateVerifier()))
	if st != http.StatusCreated {
		t.Fatalf("push: %d %v", st, out)
	}
	authURL := parAuthURL(e, client.ID, out["request_uri"].(string))
	b := e.browser()
	_, page := b.get(e.issuer + "/login")
	b.login(e.issuer, page, userEmail, userPassword) // then sent to /account, not mounted here

	var (
		wg            sync.WaitGroup
		mu            sync.Mutex
		codes, denied int
	)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, authURL, nil)
			resp, err := b.c.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			loc, _ := url.Parse(resp.Header.Get("Location"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case loc != nil && loc.Query().Get("code") != "":
				codes++
			case resp.StatusCode == http.StatusBadRequest || (loc != nil && loc.Query().Get("error") == "invalid_request_uri"):
				denied++
			default:
				t.Errorf("unexpected answer %d Location=%q", resp.StatusCode, resp.Header.Get("Location"))
			}
		}()
	}
	wg.Wait()
	if codes != 1 || denied != 19 {
		t.Fatalf("codes=%d denied=%d, want 1 and 19", codes, denied)
	}
}

// A pushed prompt=login sends the user to log in once, not for ever: the
// login after the push satisfies it.
func TestPAR_PromptLoginOnce(t *testing.T) {
	e := newEnv(t)
	client, secret := e.webClient()
	cfg := &oauth2.Config{ClientID: client.ID, RedirectURL: redirectURI, Scopes: []string{"openid"}}
	b := e.browser()
	resp, page := b.get(e.issuer + "/login")
	b.login(e.issuer, page, userEmail, userPassword) // logged in before the push
	st, out := push(t, parEndpoint(t, e), client.ID, secret,
		pushedParams(cfg, randString(), oauth2.GenerateVerifier(), oauth2.SetAuthURLParam("prompt", "login")))
	if st != http.StatusCreated {
		t.Fatalf("push: %d %v", st, out)
	}
	resp, page = b.get(parAuthURL(e, client.ID, out["request_uri"].(string)))
	if !strings.Contains(page, `action="/login"`) {
		t.Fatalf("prompt=login did not ask for a login: %d\n%s", resp.StatusCode, page)
	}
	resp, page = b.login(e.issuer, page, userEmail, userPassword)
	if strings.Contains(page, `action="/login"`) {
		t.Fatal("asked to log in again after logging in")
	}
	if strings.Contains(page, `action="/consent"`) {
		resp, page = b.consent(e.issuer, page, "allow")
	}
	if q := redirectQuery(t, resp, page); q.Get("code") == "" {
		t.Fatalf("no code: %v", q)
	}
}

// A client flagged require_pushed_authorization_requests gets no code from a
// plain authorization request, but does through PAR.
func TestPAR_RequiredByClient(t *testing.T) {
	e := newEnv(t)
	client, secret := e.mustClient(clients.Spec{RedirectURIs: []string{redirectURI}, FirstParty: true,
		GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid"}, RequirePushedAuthorizationRequests: true})
	cfg := &oauth2.Config{ClientID: client.ID, RedirectURL: redirectURI, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: e.issuer + "/oauth2/auth"}}
	verifier := oauth2.GenerateVerifier()
	b := e.browser()
	q := e.authorize(b, cfg.AuthCodeURL(randString(), oauth2.S256ChallengeOption(verifier)))
	if q.Get("code") != "" || q.Get("error") != "invalid_request" {
		t.Fatalf("plain request of a PAR-only client: %v", q)
	}
	st, out := push(t, parEndpoint(t, e), client.ID, secret, pushedParams(cfg, randString(), verifier))
	if st != http.StatusCreated {
		t.Fatalf("push: %d %v", st, out)
	}
	if q := e.authorize(b, parAuthURL(e, client.ID, out["request_uri"].(string))); q.Get("code") == "" {
		t.Fatalf("pushed request: %v", q)
	}
}

// Failed client authentications at /oauth2/par count against the address
// like those at the token endpoint: secret guessing here is throttled too.
func TestPAR_FailedClientAuthThrottled(t *testing.T) {
	e := newEnv(t)
	client, _ := e.webClient()
	endpoint := parEndpoint(t, e)
	cfg := &oauth2.Config{ClientID: client.ID, RedirectURL: redirectURI, Scopes: []string{"openid"}}
	params := pushedParams(cfg, randString(), oauth2.GenerateVerifier())
	var last int
	for i := 0; i < 25 && last != http.StatusTooManyRequests; i++ {
		last, _ = push(t, endpoint, client.ID, "guess-"+randString(), params)
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("25 bad secrets: last answer %d, want 429", last)
	}
}
