package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/oauth/clients"
	"github.com/authd/authd/storage/fositestore"
	"github.com/authd/authd/storage/storagetest"
)

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// browser is a cookie-keeping client that does not follow redirects.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// postLogin GETs /login for a CSRF token, then posts the form.
func postLogin(t *testing.T, c *http.Client, base, email, password string) *http.Response {
	t.Helper()
	resp, err := c.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRE.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no CSRF token on /login: %s", b)
	}
	resp, err = c.PostForm(base+"/login", url.Values{"csrf_token": {string(m[1])}, "email": {email}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func mustClient(t *testing.T, dbURL string, spec clients.Spec) (id, secret string) {
	t.Helper()
	db, err := openPool(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, secret, err := clients.NewRegistry(fositestore.New(db, fositestore.Options{})).CreateClient(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return c.ID, secret
}

func clientCredentialsToken(base, id, secret string) (int, error) {
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// A password-guessing flood against one account is throttled (per-account
// backoff in Postgres, per-IP limits), while token issuance keeps working.
func TestBruteForce_LoginThrottledWhileClientCredentialsServed(t *testing.T) {
	db := storagetest.NewDB(t)
	ts := startServer(t, db.URL, nil, nil)
	svc := mustAccounts(t, db.URL)
	if _, err := svc.CreateUser(context.Background(), accounts.NewUser{Email: "victim@example.com", Password: "the-right-password"}, nil); err != nil {
		t.Fatal(err)
	}
	id, secret := mustClient(t, db.URL, clients.Spec{Name: "svc", GrantTypes: []string{"client_credentials"}})

	var tokensOK, tokensFailed atomic.Int32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if code, err := clientCredentialsToken(ts.URL, id, secret); err == nil && code == 200 {
				tokensOK.Add(1)
			} else {
				tokensFailed.Add(1)
			}
		}
	}()
	c := browser(t)
	throttled := false
	for i := 0; i < 30 && !throttled; i++ {
		resp := postLogin(t, c, ts.URL, "victim@example.com", "guess-"+string(rune('a'+i)))
		switch resp.StatusCode {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			throttled = true
			if resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		default:
			t.Fatalf("attempt %d: status %d", i, resp.StatusCode)
		}
	}
	close(stop)
	wg.Wait()
	if !throttled {
		t.Fatal("30 wrong passwords in a row were never throttled")
	}
	// Even the right password is refused while the account is backing off.
	if resp := postLogin(t, c, ts.URL, "victim@example.com", "the-right-password"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("right password during backoff: %d, want 429", resp.StatusCode)
	}
	if tokensOK.Load() == 0 || tokensFailed.Load() != 0 {
		t.Fatalf("client_credentials during the flood: %d ok, %d failed", tokensOK.Load(), tokensFailed.Load())
	}
}

// POST /api/v1/register with a first-party client's credentials answers like
// the password grant: the app gets tokens for the new user.
func TestRegister_FirstPartyClientGetsTokens(t *testing.T) {
	db := storagetest.NewDB(t)
	ts := startServer(t, db.URL, nil, nil)
	id, secret := mustClient(t, db.URL, clients.Spec{Name: "mobile app", FirstParty: true,
		GrantTypes: []string{"password", "refresh_token"}, Scopes: []string{"openid", "offline_access", "credits:read"}})
	thirdID, thirdSecret := mustClient(t, db.URL, clients.Spec{Name: "third party", GrantTypes: []string{"client_credentials"}})

	register := func(clientID, clientSecret, email string) (*http.Response, map[string]any) {
		body, _ := json.Marshal(map[string]string{"email": email, "password": "a-long-unusual-passphrase", "scope": "offline_access credits:read"})
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/v1/register", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(clientID, clientSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp, m
	}
	resp, tok := register(id, secret, "new@example.com")
	if resp.StatusCode != 200 || tok["access_token"] == nil || tok["refresh_token"] == nil || tok["token_type"] != "bearer" {
		t.Fatalf("status %d body %v: want a token response", resp.StatusCode, tok)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", resp.Header.Get("Cache-Control"))
	}
	// The token works on the API as the new user.
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/v1/credits", nil)
	req.Header.Set("Authorization", "Bearer "+tok["access_token"].(string))
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 200 {
		t.Fatalf("credits with the registration token: %d", r2.StatusCode)
	}
	t.Run("ErrWrongSecret", func(t *testing.T) {
		resp, _ := register(id, "wrong", "other@example.com")
		if resp.StatusCode != 401 {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	})
	t.Run("ErrNotFirstParty", func(t *testing.T) {
		resp, _ := register(thirdID, thirdSecret, "third@example.com")
		if resp.StatusCode != 401 {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
		svc := mustAccounts(t, db.URL)
		if _, err := svc.UserByEmail(context.Background(), "third@example.com"); err == nil {
			t.Fatal("a user was created although the client was refused")
		}
	})
}
