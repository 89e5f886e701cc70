package oauth_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/internal/audit"
)

// TestRefresh_ConcurrentSameToken: 20 goroutines refreshing one token all
// get the identical new pair; exactly one family survives, and a reuse
// after the window revokes it.
func TestRefresh_ConcurrentSameToken(t *testing.T) {
	e := newEnv(t)
	web, secret := e.webClient()
	tok := e.codeFlow(web.ID, secret, "openid offline_access")
	rt := tok["refresh_token"].(string)

	const n = 20
	var (
		wg     sync.WaitGroup
		start  = make(chan struct{})
		bodies = make([]string, n)
		codes  = make([]int, n)
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest(http.MethodPost, e.issuer+"/oauth2/token",
				strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(web.ID, secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			codes[i], bodies[i] = resp.StatusCode, string(b)
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if codes[i] != 200 || bodies[i] != bodies[0] {
			t.Fatalf("response %d: %d %s\nfirst: %s", i, codes[i], bodies[i], bodies[0])
		}
	}
	var families int
	if err := e.db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM oauth2_refresh WHERE active`).Scan(&families); err != nil {
		t.Fatal(err)
	}
	if families != 1 {
		t.Errorf("%d active refresh tokens, want 1", families)
	}

	backdateRotations(t, e, 11*time.Second)
	st, out := e.tokenRequest(web.ID, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	if st != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("reuse after window: %d %v", st, out)
	}
	if err := e.db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM oauth2_refresh WHERE active`).Scan(&families); err != nil {
		t.Fatal(err)
	}
	if families != 0 {
		t.Errorf("%d active refresh tokens after reuse, want 0", families)
	}
}

// TestRefresh_ReplayNeedsSameClient: inside the window another client
// presenting the token gets an error, not the cached pair.
func TestRefresh_ReplayNeedsSameClient(t *testing.T) {
	e := newEnv(t)
	web, secret := e.webClient()
	other, otherSecret := e.webClient()
	tok := e.codeFlow(web.ID, secret, "openid offline_access")
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}}
	if st, out := e.tokenRequest(web.ID, secret, form); st != 200 {
		t.Fatalf("%d %v", st, out)
	}
	if st, out := e.tokenRequest(other.ID, otherSecret, form); st == 200 || out["access_token"] != nil {
		t.Errorf("other client got %d %v", st, out)
	}
}

// TestRefresh_RolesAndDisabledThroughUserCache: with the user watcher
// running (accounts answers from its cache, as in production), a role added
// and a user disabled are both seen by the very next refresh.
func TestRefresh_RolesAndDisabledThroughUserCache(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.accts.WatchUsers(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-e.accts.UserCacheReady():
	case <-time.After(10 * time.Second):
		t.Fatal("user watcher did not start listening")
	}
	web, secret := e.webClient()
	rt := e.codeFlow(web.ID, secret, "openid offline_access")["refresh_token"].(string)
	refresh := func() (int, map[string]any) {
		t.Helper()
		st, out := e.tokenRequest(web.ID, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		if next, ok := out["refresh_token"].(string); ok {
			rt = next
		}
		return st, out
	}
	roles := func(out map[string]any) []any {
		t.Helper()
		at, _ := out["access_token"].(string)
		r, _ := verifyWithJWKS(t, e, at)["roles"].([]any)
		return r
	}

	st, out := refresh() // caches the user
	if st != 200 || len(roles(out)) != 2 {
		t.Fatalf("first refresh: %d %v", st, out)
	}
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO roles (name, description) VALUES ('auditor', 'test')`); err != nil {
		t.Fatal(err)
	}
	if err := e.accts.AddRole(ctx, e.userID, "auditor"); err != nil {
		t.Fatal(err)
	}
	st, out = refresh()
	if got := roles(out); st != 200 || !slices.Contains(got, any("auditor")) {
		t.Fatalf("refresh after a role was added: %d roles %v", st, got)
	}
	// Without revoking: the refresh itself must refuse a disabled user.
	if _, err := e.accts.SetDisabled(ctx, audit.Event{}, e.userID, true, false); err != nil {
		t.Fatal(err)
	}
	if st, out = refresh(); st != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("refresh of a disabled user: %d %v", st, out)
	}
}
