package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTokens is a token endpoint and an introspection endpoint with
// authd's answers for the parts the workers use: a rotation replaces the
// chain's refresh token and issues an access token with expires_in, an
// access token is active until it expires, and a refresh token other than
// the chain's current one is refused (invalid_grant).
type fakeTokens struct {
	mu        sync.Mutex
	n         int
	chain     string
	expiry    map[string]time.Time // access token -> expiry
	life      time.Duration        // of the access tokens it issues
	rotations int
	refuse    bool // refuse every rotation
}

func (f *fakeTokens) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/oauth2/introspect":
		if exp, ok := f.expiry[r.PostForm.Get("token")]; ok && time.Now().Before(exp) {
			fmt.Fprint(w, `{"active":true,"token_type":"Bearer"}`)
			return
		}
		fmt.Fprint(w, `{"active":false}`)
	case r.PostForm.Get("grant_type") == "client_credentials":
		fmt.Fprint(w, `{"access_token":"cc","expires_in":3600}`)
	case r.PostForm.Get("grant_type") == "refresh_token":
		if f.refuse || r.PostForm.Get("refresh_token") != f.chain {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_grant"}`)
			return
		}
		f.n++
		f.rotations++
		f.chain = fmt.Sprintf("rt-%d", f.n)
		at := fmt.Sprintf("at-%d", f.n)
		f.expiry[at] = time.Now().Add(f.life)
		fmt.Fprintf(w, `{"access_token":%q,"refresh_token":%q,"expires_in":%d}`, at, f.chain, int(f.life.Seconds()))
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// newFakeEnv is one worker's scenario environment against a fakeTokens
// whose chain holds an access token that expires at oldExp (in the past:
// expired) and a refresh token the fake accepts.
func newFakeEnv(t *testing.T, oldExp time.Time) (*scenarioEnv, *fakeTokens) {
	t.Helper()
	ft := &fakeTokens{chain: "rt-0", expiry: map[string]time.Time{"at-0": oldExp}, life: time.Hour}
	srv := httptest.NewServer(ft)
	t.Cleanup(srv.Close)
	c := newClient(1, nil)
	t.Cleanup(c.CloseIdleConnections)
	f := &fixture{base: srv.URL, svcID: "svc", svcSecret: "s", web: &codeFlow{base: srv.URL, clientID: "web", secret: "s"},
		chains: []string{"rt-0"}, userTokens: []string{"at-0"}, oidcChains: []string{"oidc-0"}, na: map[string]string{}}
	return newScenarioEnv(f, c), ft
}

// The production-size run's mixed errors: the worker's access token, issued
// by a scenario more than its lifetime earlier, had expired, and
// introspection answered {"active":false}. Each worker that introspects
// renews such a token before the run.
func TestIntrospectingWorkersRenewAnExpiredToken(t *testing.T) {
	for name, worker := range map[string]func(*scenarioEnv) NewWorker{"introspection": introspectWorker, "mixed": mixedWorker} {
		t.Run(name, func(t *testing.T) {
			e, ft := newFakeEnv(t, time.Now().Add(-time.Minute))
			ctx := context.Background()
			if _, err := worker(e)(ctx, 0); err != nil {
				t.Fatal(err)
			}
			if ft.rotations != 1 || e.f.userTokens[0] != "at-1" || e.f.chains[0] != "rt-1" {
				t.Fatalf("rotations %d, token %q, chain %q: want the chain rotated once before the run", ft.rotations, e.f.userTokens[0], e.f.chains[0])
			}
			if err := introspectOp(e, 0)(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A token known to live long enough is introspected as it is, without a
// rotation that would cost the introspection scenario a refresh per worker.
func TestIntrospectingWorkerKeepsALiveToken(t *testing.T) {
	e, ft := newFakeEnv(t, time.Now().Add(time.Hour))
	e.tokenExp[0] = time.Now().Add(time.Hour)
	op, err := introspectWorker(e)(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := op(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ft.rotations != 0 {
		t.Errorf("%d rotations, want none", ft.rotations)
	}
}

// In a run longer than the token's life the worker rotates before
// introspecting a token about to expire.
func TestIntrospectionRenewsATokenAboutToExpire(t *testing.T) {
	e, ft := newFakeEnv(t, time.Now().Add(renewInRun/2))
	e.tokenExp[0] = time.Now().Add(renewInRun / 2)
	if err := introspectOp(e, 0)(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ft.rotations != 1 || e.f.userTokens[0] != "at-1" {
		t.Errorf("rotations %d, token %q: want one rotation first", ft.rotations, e.f.userTokens[0])
	}
	if want := time.Now().Add(time.Hour); e.tokenExp[0].After(want) || e.tokenExp[0].Before(want.Add(-time.Minute)) {
		t.Errorf("expiry %s, want about an hour from now (expires_in)", e.tokenExp[0])
	}
}

// An inactive answer is still an error, and says where the token stood
// against its expiry: a token the bench holds as live is the server's fault.
func TestInactiveAnswerIsAnErrorWithTheTokensExpiry(t *testing.T) {
	e, ft := newFakeEnv(t, time.Now().Add(time.Hour))
	e.tokenExp[0] = time.Now().Add(10 * time.Minute)
	ft.expiry["at-0"] = time.Now().Add(-time.Second)
	err := introspectOp(e, 0)(context.Background())
	if err == nil || !strings.Contains(err.Error(), `{"active":false}`) || !strings.Contains(err.Error(), "it expires in 10m0s by its expires_in") {
		t.Errorf("err = %v", err)
	}
	now := time.Now()
	e.tokenExp[0] = now.Add(-2 * time.Minute)
	if got := e.expiryNote(0, now); got != "it expired 2m0s before, by its expires_in" {
		t.Errorf("note %q", got)
	}
	e.tokenExp[0] = time.Time{}
	if got := e.expiryNote(0, now); got != "its expiry is unknown" {
		t.Errorf("note %q", got)
	}
}

// A rotation the server refuses is an error of the op, and of the worker's
// construction when the worker had to renew its token first.
func TestRefusedRotationIsAnError(t *testing.T) {
	e, ft := newFakeEnv(t, time.Now().Add(-time.Minute))
	ft.refuse = true
	if _, err := mixedWorker(e)(context.Background(), 0); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("worker construction: err = %v", err)
	}
	if err := refreshOp(e, 0, false)(context.Background()); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("refresh op: err = %v", err)
	}
	if e.f.chains[0] != "rt-0" || e.f.userTokens[0] != "at-0" {
		t.Errorf("chain %q token %q: a failed rotation must keep the old pair", e.f.chains[0], e.f.userTokens[0])
	}
}
