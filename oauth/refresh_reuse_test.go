package oauth_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// backdateRotations moves every refresh token's rotation time back by d:
// the reuse window is measured with the database's clock, so tests move the
// rows rather than a process clock.
func backdateRotations(t *testing.T, e *env, d time.Duration) {
	t.Helper()
	if _, err := e.db.Pool.Exec(t.Context(), `UPDATE oauth2_refresh SET first_used_at = first_used_at - $1::interval
		WHERE first_used_at IS NOT NULL`, d.String()); err != nil {
		t.Fatal(err)
	}
}

func activeRefreshTokens(t *testing.T, e *env) int {
	t.Helper()
	var n int
	if err := e.db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM oauth2_refresh WHERE active`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRefresh_ReplayOnlyWhileSuccessorUnused: inside the window, the token
// just rotated replays its response; once its successor was used, and for
// any older token, presenting it is reuse and revokes the family.
func TestRefresh_ReplayOnlyWhileSuccessorUnused(t *testing.T) {
	e := newEnv(t)
	web, secret := e.webClient()
	rt1 := e.codeFlow(web.ID, secret, "openid offline_access")["refresh_token"].(string)
	refresh := func(rt string) (int, map[string]any) {
		t.Helper()
		return e.tokenRequest(web.ID, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	}
	st, out := refresh(rt1)
	if st != 200 {
		t.Fatalf("first refresh: %d %v", st, out)
	}
	rt2 := out["refresh_token"].(string)
	if st, again := refresh(rt1); st != 200 || again["refresh_token"] != rt2 {
		t.Fatalf("retry while the successor is unused: %d %v", st, again)
	}
	st, out = refresh(rt2)
	if st != 200 {
		t.Fatalf("second refresh: %d %v", st, out)
	}
	rt3 := out["refresh_token"].(string)
	// rt1's successor (rt2) is used now: rt1 is reuse, though still inside
	// the window, and kills the family.
	if st, out := refresh(rt1); st != 400 || out["error"] != "invalid_grant" || out["access_token"] != nil {
		t.Fatalf("ancestor replayed after its successor was used: %d %v", st, out)
	}
	if st, out := refresh(rt3); st != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("family survived the reuse: %d %v", st, out)
	}
	if n := activeRefreshTokens(t, e); n != 0 {
		t.Errorf("%d active refresh tokens after reuse, want 0", n)
	}
}

// TestRefresh_ReuseWindowUsesDatabaseClock: a replica whose clock runs an
// hour ahead still honours a retry inside the window (measured by the
// database), and its clock cannot stretch the window either.
func TestRefresh_ReuseWindowUsesDatabaseClock(t *testing.T) {
	e := newEnv(t)
	web, secret := e.webClient()
	rt := e.codeFlow(web.ID, secret, "openid offline_access")["refresh_token"].(string)
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	st, first := e.tokenRequest(web.ID, secret, form)
	if st != 200 {
		t.Fatalf("refresh: %d %v", st, first)
	}
	e.clock.Advance(time.Hour)
	if st, out := e.tokenRequest(web.ID, secret, form); st != 200 || out["refresh_token"] != first["refresh_token"] {
		t.Fatalf("retry with a replica clock an hour ahead: %d %v", st, out)
	}
	backdateRotations(t, e, 11*time.Second)
	if st, out := e.tokenRequest(web.ID, secret, form); st != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("retry after the window: %d %v", st, out)
	}
}

// TestRefresh_DatabaseFailureIsUnavailable: when reading the user behind
// the token fails, the answer is 503 temporarily_unavailable (keep the
// token, retry), never invalid_grant; the token still works afterwards.
func TestRefresh_DatabaseFailureIsUnavailable(t *testing.T) {
	e := newEnv(t)
	web, secret := e.webClient()
	rt := e.codeFlow(web.ID, secret, "openid offline_access")["refresh_token"].(string)
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	if _, err := e.db.Pool.Exec(t.Context(), `ALTER TABLE users RENAME TO users_away`); err != nil {
		t.Fatal(err)
	}
	st, out := e.tokenRequest(web.ID, secret, form)
	if _, err := e.db.Pool.Exec(t.Context(), `ALTER TABLE users_away RENAME TO users`); err != nil {
		t.Fatal(err)
	}
	if st != http.StatusServiceUnavailable || out["error"] != "temporarily_unavailable" {
		t.Fatalf("refresh while the user read fails: %d %v", st, out)
	}
	if st, out := e.tokenRequest(web.ID, secret, form); st != 200 {
		t.Fatalf("refresh after the failure: %d %v", st, out)
	}
}

// TestToken_ConcurrentCodeExchange: 8 exchanges of one code at once give
// exactly one success and invalid_grant to every other, and the winner's
// tokens are revoked, every round.
func TestToken_ConcurrentCodeExchange(t *testing.T) {
	e := newEnv(t)
	web, secret := e.webClient()
	const rounds, n = 5, 8
	for round := range rounds {
		verifier, challenge := pkce()
		authURL := e.issuer + "/oauth2/auth?" + url.Values{"response_type": {"code"}, "client_id": {web.ID},
			"redirect_uri": {redirectURI}, "scope": {"openid offline_access"}, "state": {randString()}, "nonce": {randString()},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"}}.Encode()
		code := e.authorize(e.browser(), authURL).Get("code")
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {redirectURI}, "code_verifier": {verifier}}
		var (
			wg     sync.WaitGroup
			start  = make(chan struct{})
			status = make([]int, n)
			outs   = make([]map[string]any, n)
		)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				status[i], outs[i] = e.tokenRequest(web.ID, secret, form)
			}()
		}
		close(start)
		wg.Wait()
		var winner map[string]any
		for i := range n {
			switch {
			case status[i] == 200 && winner == nil:
				winner = outs[i]
			case status[i] == 400 && outs[i]["error"] == "invalid_grant":
			default:
				t.Fatalf("round %d, exchange %d: %d %v", round, i, status[i], outs[i])
			}
		}
		if winner == nil {
			t.Fatalf("round %d: no exchange succeeded", round)
		}
		if e.introspect(web.ID, secret, winner["access_token"].(string))["active"] != false {
			t.Errorf("round %d: the winner's access token survived the replay", round)
		}
		st, out := e.tokenRequest(web.ID, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {winner["refresh_token"].(string)}})
		if st != 400 || !strings.Contains(out["error"].(string), "invalid_grant") {
			t.Errorf("round %d: the winner's refresh token survived the replay: %d %v", round, st, out)
		}
	}
}
