package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
)

// fixture is what the scenarios use: clients, users and live tokens. A
// missing part is recorded in na and turns the scenarios needing it into
// "n/a (reason)" instead of failing the run.
type fixture struct {
	base string
	// svc is a client_credentials client with scopes credits:charge and
	// introspect (a resource server that also spends credits).
	svcID, svcSecret string
	web              *codeFlow
	loginUsers       []loginUser
	spendUsers       []string
	hotUser          string
	// chains[i] is worker i's current refresh token (scope without openid),
	// userTokens[i] the access token issued with it; a scenario's worker i
	// owns both exclusively while it runs. oidcChains have scope openid,
	// so each refresh also signs an ID token.
	chains, userTokens, oidcChains []string
	na                             map[string]string // need -> reason
}

type loginUser struct{ email, password string }

// Needs the scenarios declare.
const (
	needSvc    = "service client"
	needWeb    = "web client and users"
	needChains = "refresh tokens"
	needSpend  = "credit accounts"
)

func (f *fixture) missing(needs ...string) string {
	for _, n := range needs {
		if r, ok := f.na[n]; ok {
			return r
		}
	}
	return ""
}

type clientJSON struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// prepare builds the fixture on w: clients and login users through the
// authd CLI, spend users in bulk through SQL (the ledger's account trigger
// does the rest) and their credits through the service API, and refresh
// chains through real authorization-code flows.
func prepare(ctx context.Context, w *world, chains int, log io.Writer) *fixture {
	f := &fixture{base: w.URL, na: map[string]string{}}
	// A cached production-size world keeps earlier runs' fixtures: this
	// run's users get names of their own.
	run := randToken()[:8]
	c := newClient(16, nil)

	out, err := w.cli(ctx, "", "client", "create", "--output", "json", "--name", "bench service",
		"--grant-type", "client_credentials", "--scope", "credits:charge credits:grant introspect")
	var svc clientJSON
	if err == nil {
		err = json.Unmarshal(out, &svc)
	}
	if err != nil || svc.ClientSecret == "" {
		f.na[needSvc] = fmt.Sprintf("creating the service client failed: %v", firstLine(err, out))
	}
	f.svcID, f.svcSecret = svc.ClientID, svc.ClientSecret

	out, err = w.cli(ctx, "", "client", "create", "--output", "json", "--name", "bench web app",
		"--redirect-uri", benchRedirect, "--grant-type", "authorization_code", "--grant-type", "refresh_token",
		"--scope", webScopes)
	var web clientJSON
	if err == nil {
		err = json.Unmarshal(out, &web)
	}
	if err != nil || web.ClientSecret == "" {
		f.na[needWeb] = fmt.Sprintf("creating the web client failed: %v", firstLine(err, out))
	}
	f.web = &codeFlow{base: w.URL, clientID: web.ClientID, secret: web.ClientSecret}

	if f.missing(needWeb) == "" {
		for i := range 8 {
			u := loginUser{email: fmt.Sprintf("bench-login-%s-%d@example.test", run, i), password: "bench password " + randToken()[:12]}
			if _, err := w.cli(ctx, u.password+"\n", "user", "create", "--output", "json", "--email", u.email, "--password-stdin", "--verified"); err != nil {
				f.na[needWeb] = fmt.Sprintf("creating login users failed: %v", err)
				break
			}
			f.loginUsers = append(f.loginUsers, u)
		}
	}
	if f.missing(needWeb) == "" {
		fmt.Fprintf(log, "preparing %d refresh-token chains through the code flow …\n", chains)
		if err := f.prepareChains(ctx, c, chains); err != nil {
			f.na[needChains] = err.Error()
		}
	} else {
		f.na[needChains] = f.na[needWeb]
	}

	if f.missing(needSvc) == "" {
		fmt.Fprintln(log, "preparing 1,000 credit accounts …")
		if err := f.prepareSpend(ctx, w, c, 1000, run); err != nil {
			f.na[needSpend] = err.Error()
		}
	} else {
		f.na[needSpend] = f.na[needSvc]
	}
	return f
}

func firstLine(err error, out []byte) string {
	if err != nil {
		s, _, _ := strings.Cut(err.Error(), "\n")
		return s
	}
	s, _, _ := strings.Cut(string(out), "\n")
	return "unexpected output: " + s
}

// prepareChains logs one browser in, then runs the code flow n times with
// that session (consent remembered) for n refresh chains.
func (f *fixture) prepareChains(ctx context.Context, c *http.Client, n int) error {
	b := newBrowser()
	u := f.loginUsers[0]
	for range n {
		for _, scope := range []string{oauthScopes, webScopes} {
			t, _, err := f.web.run(ctx, c, b, u.email, u.password, scope, false)
			if err != nil {
				return fmt.Errorf("authorization-code flow failed: %w", err)
			}
			if t.RefreshToken == "" {
				return errors.New("authorization-code flow gave no refresh token")
			}
			if scope == webScopes {
				f.oidcChains = append(f.oidcChains, t.RefreshToken)
				continue
			}
			f.chains = append(f.chains, t.RefreshToken)
			f.userTokens = append(f.userTokens, t.AccessToken)
		}
	}
	return nil
}

// serviceToken gets a fresh client_credentials token for the service client.
func (f *fixture) serviceToken(ctx context.Context, c *http.Client, scope string) (string, error) {
	r, err := postForm(ctx, c, f.base+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}, f.svcID, f.svcSecret)
	if err != nil {
		return "", err
	}
	t, err := decodeToken(r, "client_credentials")
	if err != nil {
		return "", err
	}
	return t.AccessToken, nil
}

// prepareSpend inserts n users in one statement (a registration each would
// spend n bcrypt hashes on setup alone), then grants each credits through
// the service API, so the ledger sees only its own code paths.
func (f *fixture) prepareSpend(ctx context.Context, w *world, c *http.Client, n int, run string) error {
	if w.dbURL == "" {
		return errors.New("spend users need the bench's own database (not -url)")
	}
	conn, err := pgx.Connect(ctx, w.dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `INSERT INTO users (email, password_hash)
		SELECT 'bench-spend-' || $2 || '-' || g || '@example.test', '!' FROM generate_series(1, $1::int) g
		RETURNING id::text`, n+1, run)
	if err != nil {
		return fmt.Errorf("insert spend users: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("insert spend users: %w", err)
	}
	tok, err := f.serviceToken(ctx, c, "credits:grant")
	if err != nil {
		return err
	}
	f.spendUsers, f.hotUser = ids[:n], ids[n]
	if w.loadedUsers >= 10*n {
		// On a production-size world the spends go to accounts with years
		// of history, spread over the whole table and its indexes, as in
		// production (each has a welcome grant of 1,000,000 credits); the
		// hot account stays a fresh one.
		seen := map[int]bool{}
		for i := range f.spendUsers {
			k := 1 + rand.IntN(w.loadedUsers)
			for seen[k] {
				k = 1 + rand.IntN(w.loadedUsers)
			}
			seen[k] = true
			f.spendUsers[i] = userID(k)
		}
		ids, n = ids[n:], 0
	}
	// Enough for any run: the spread users see ~100 spends each, the hot
	// one every spend of its scenario.
	grants := make(chan int)
	errc := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range grants {
				amount := 1_000_000
				if i == n {
					amount = 1_000_000_000
				}
				body := fmt.Sprintf(`{"amount":%d,"reference":"bench-grant-%d","description":"bench"}`, amount, i)
				r, err := postJSON(ctx, c, f.base+"/api/v1/users/"+ids[i]+"/credits/grant", tok, body)
				if err == nil && r.Status != http.StatusOK && r.Status != http.StatusCreated {
					err = r.unexpected("grant")
				}
				if err != nil {
					select {
					case errc <- err:
					default:
					}
				}
			}
		}()
	}
	for i := range ids {
		grants <- i
	}
	close(grants)
	wg.Wait()
	select {
	case err := <-errc:
		return fmt.Errorf("granting credits failed: %w", err)
	default:
		return nil
	}
}
