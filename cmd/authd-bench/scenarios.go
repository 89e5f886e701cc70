package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	loginui "github.com/authd/authd/login-ui"
)

// scenario is one workload of issue 7.
type scenario struct {
	name      string
	limit     string   // the machine limit it is compared with
	target    float64  // issue 7's ops/s target; 0 none (or relative, below)
	needs     []string // fixture parts; missing ones make it n/a
	reqsPerOp int
	// bcryptBound scenarios run at lower concurrency: more would only queue
	// behind the hasher's limit.
	bcryptBound bool
	worker      func(e *scenarioEnv) NewWorker
}

// scenarioEnv is what a scenario's workers share for one run.
type scenarioEnv struct {
	f        *fixture
	client   *http.Client // keep-alive, one connection per worker
	ips      *sourceIPs
	svcToken string // credits:charge client_credentials token
	seq      *atomic.Uint64
	// tokenExp[i] is when f.userTokens[i] expires, by the expires_in of
	// the answer that issued it (counted from when the request was sent);
	// zero when unknown (the fixture's tokens). Allocated with the env
	// (newScenarioEnv): the fixture's tokens are all prepared by then, and
	// worker i only ever writes element i.
	tokenExp []time.Time
}

// newScenarioEnv is the environment every scenario (and the soak) runs
// its workers in.
func newScenarioEnv(f *fixture, client *http.Client) *scenarioEnv {
	return &scenarioEnv{f: f, client: client, ips: &sourceIPs{}, seq: &atomic.Uint64{},
		tokenExp: make([]time.Time, len(f.userTokens))}
}

// Access tokens expire (AUTHD_ACCESS_TOKEN_TTL, 15 minutes by default) and
// introspection rightly answers {"active":false} for an expired one. The
// fixture's tokens and those an earlier scenario left can be older than
// that when a later scenario introspects them (on the production-size
// world the scenarios from refresh to mixed, with a settle each, took over
// 20 minutes), so a worker renews its token as a client would, by a
// rotation of its chain:
const (
	// renewAtStart: a worker whose token expires within this long, or
	// whose expiry is unknown, rotates its chain when it is built, before
	// the run starts (a scenario level runs for seconds).
	renewAtStart = 5 * time.Minute
	// renewInRun: during a run (a long -duration) a worker rotates before
	// introspecting a token that expires within this long.
	renewInRun = 30 * time.Second
)

// rotate rotates worker i's chain (f.chains[i]) and keeps the new pair and
// the access token's expiry. After a failure the old pair is kept:
// presenting the refresh token again within the reuse window is an
// idempotent retry.
func (e *scenarioEnv) rotate(ctx context.Context, i int) error {
	sent := time.Now()
	t, err := e.f.web.refresh(ctx, e.client, e.f.chains[i])
	if err != nil {
		return err
	}
	e.f.chains[i], e.f.userTokens[i], e.tokenExp[i] = t.RefreshToken, t.AccessToken, time.Time{}
	if t.ExpiresIn > 0 {
		e.tokenExp[i] = sent.Add(time.Duration(t.ExpiresIn) * time.Second)
	}
	return nil
}

// renewAtStartup rotates worker i's chain when its access token expires
// within renewAtStart or its expiry is unknown.
func (e *scenarioEnv) renewAtStartup(ctx context.Context, i int) error {
	if exp := e.tokenExp[i]; !exp.IsZero() && time.Until(exp) > renewAtStart {
		return nil
	}
	if err := e.rotate(ctx, i); err != nil {
		return fmt.Errorf("renewing the access token: %w", err)
	}
	return nil
}

// expiryNote says, for an error message, where worker i's access token
// stood against its expiry at now.
func (e *scenarioEnv) expiryNote(i int, now time.Time) string {
	switch exp := e.tokenExp[i]; {
	case exp.IsZero():
		return "its expiry is unknown"
	case now.Before(exp):
		return "it expires in " + exp.Sub(now).Round(time.Second).String() + " by its expires_in"
	default:
		return "it expired " + now.Sub(exp).Round(time.Second).String() + " before, by its expires_in"
	}
}

func scenarios() []scenario {
	return []scenario{
		{name: "client_credentials", limit: limitES256Sign, target: 3000, needs: []string{needSvc}, reqsPerOp: 1, worker: ccWorker},
		{name: "introspection", limit: limitBareHTTP, target: 10000, needs: []string{needSvc, needChains}, reqsPerOp: 1, worker: introspectWorker},
		{name: "jwks", limit: limitBareHTTP, target: 15000, reqsPerOp: 1, worker: jwksWorker},
		{name: "refresh", limit: limitES256Sign, target: 2000, needs: []string{needChains}, reqsPerOp: 1, worker: refreshWorker(false)},
		{name: "refresh_oidc", limit: limitRS256Sign, needs: []string{needChains}, reqsPerOp: 1, worker: refreshWorker(true)},
		{name: "authcode_pkce", limit: limitBcrypt, needs: []string{needWeb}, reqsPerOp: 7, bcryptBound: true, worker: authcodeWorker},
		{name: "login", limit: limitBcrypt, needs: []string{needWeb}, reqsPerOp: 1, bcryptBound: true, worker: loginWorker},
		{name: "registration", limit: limitBcrypt, reqsPerOp: 1, bcryptBound: true, worker: registerWorker},
		{name: "spend_1000_users", limit: limitBareHTTP, target: 10000, needs: []string{needSpend}, reqsPerOp: 1, worker: spendWorker(false)},
		{name: "spend_hot_account", limit: limitBareHTTP, target: 3000, needs: []string{needSpend}, reqsPerOp: 1, worker: spendWorker(true)},
		{name: "mixed_70i_20t_10r", limit: limitBareHTTP, needs: []string{needSvc, needChains}, reqsPerOp: 1, worker: mixedWorker},
	}
}

func ccOp(e *scenarioEnv) Op {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"credits:charge"}}
	return func(ctx context.Context) error {
		r, err := postForm(ctx, e.client, e.f.base+"/oauth2/token", form, e.f.svcID, e.f.svcSecret)
		if err != nil {
			return err
		}
		_, err = decodeToken(r, "client_credentials")
		return err
	}
}

func ccWorker(e *scenarioEnv) NewWorker {
	return func(context.Context, int) (Op, error) { return ccOp(e), nil }
}

var activeTrue = []byte(`"active":true`)

// introspectOp introspects worker i's user access token (a refresh in the
// mixed scenario replaces it, revoking the old one), first renewing it when
// it is about to expire.
func introspectOp(e *scenarioEnv, i int) Op {
	return func(ctx context.Context) error {
		if exp := e.tokenExp[i]; !exp.IsZero() && time.Until(exp) <= renewInRun {
			if err := e.rotate(ctx, i); err != nil {
				return fmt.Errorf("renewing the access token before introspection: %w", err)
			}
		}
		tok := e.f.userTokens[i]
		r, err := postForm(ctx, e.client, e.f.base+"/oauth2/introspect", url.Values{"token": {tok}}, e.f.svcID, e.f.svcSecret)
		if err != nil {
			return err
		}
		if r.Status != http.StatusOK || !bytes.Contains(r.Body, activeTrue) {
			return fmt.Errorf("%w (%s)", r.unexpected("introspection of a live token"), e.expiryNote(i, time.Now()))
		}
		return nil
	}
}

func introspectWorker(e *scenarioEnv) NewWorker {
	return func(ctx context.Context, i int) (Op, error) {
		if i >= len(e.f.userTokens) {
			return nil, fmt.Errorf("only %d user tokens prepared", len(e.f.userTokens))
		}
		if err := e.renewAtStartup(ctx, i); err != nil {
			return nil, err
		}
		return introspectOp(e, i), nil
	}
}

func jwksWorker(e *scenarioEnv) NewWorker {
	return func(context.Context, int) (Op, error) {
		return func(ctx context.Context) error {
			r, err := get(ctx, e.client, e.f.base+"/.well-known/jwks.json", nil)
			if err != nil {
				return err
			}
			if r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte(`"keys"`)) {
				return r.unexpected("jwks")
			}
			return nil
		}, nil
	}
}

// refreshOp rotates worker i's chain (rotate).
func refreshOp(e *scenarioEnv, i int, oidc bool) Op {
	return func(ctx context.Context) error {
		if !oidc {
			return e.rotate(ctx, i)
		}
		t, err := e.f.web.refresh(ctx, e.client, e.f.oidcChains[i])
		if err != nil {
			return err
		}
		e.f.oidcChains[i] = t.RefreshToken
		return nil
	}
}

func refreshWorker(oidc bool) func(e *scenarioEnv) NewWorker {
	return func(e *scenarioEnv) NewWorker {
		return func(_ context.Context, i int) (Op, error) {
			if i >= len(e.f.chains) || i >= len(e.f.oidcChains) {
				return nil, fmt.Errorf("only %d refresh chains prepared", len(e.f.chains))
			}
			return refreshOp(e, i, oidc), nil
		}
	}
}

// authcodeWorker runs the whole flow a new browser goes through: the app
// redirects to /oauth2/auth, authd to /login, the user logs in, consents
// (prompt=consent), the app exchanges the code with its PKCE verifier.
func authcodeWorker(e *scenarioEnv) NewWorker {
	return func(_ context.Context, i int) (Op, error) {
		rc := &rotatingClient{ips: e.ips, every: 15} // login allows a burst of 20 per IP
		return func(ctx context.Context) error {
			u := e.f.loginUsers[rand.IntN(len(e.f.loginUsers))]
			_, _, err := e.f.web.run(ctx, rc.client(), newBrowser(), u.email, u.password, webScopes, true)
			return err
		}, nil
	}
}

// loginWorker posts the hosted login form. The form (and its CSRF cookie)
// is fetched once per worker; each op is one POST /login, which checks the
// password and starts a browser session.
func loginWorker(e *scenarioEnv) NewWorker {
	return func(ctx context.Context, i int) (Op, error) {
		rc := &rotatingClient{ips: e.ips, every: 15}
		b := newBrowser()
		r, err := b.get(ctx, rc.client(), e.f.base+"/login")
		if err != nil {
			return nil, err
		}
		form := hiddenFields(r.Body, "/login")
		if form.Get("csrf_token") == "" {
			return nil, r.unexpected("login page has no form")
		}
		return func(ctx context.Context) error {
			u := e.f.loginUsers[i%len(e.f.loginUsers)]
			f := url.Values{"csrf_token": form["csrf_token"], "return_to": {"/account"}, "email": {u.email}, "password": {u.password}}
			r, err := b.post(ctx, rc.client(), e.f.base+"/login", f)
			if err != nil {
				return err
			}
			// Forget the session: the next login is a new browser's, not
			// a re-login that also revokes the previous session (and the
			// form's CSRF token is bound to the session it was shown to).
			delete(b.cookies, loginui.SessionCookie)
			delete(b.cookies, loginui.HostPrefix+loginui.SessionCookie)
			if r.Status != http.StatusSeeOther {
				return r.unexpected("login")
			}
			return nil
		}, nil
	}
}

func registerWorker(e *scenarioEnv) NewWorker {
	return func(_ context.Context, i int) (Op, error) {
		rc := &rotatingClient{ips: e.ips, every: 9} // registration allows a burst of 10 per IP
		return func(ctx context.Context) error {
			n := e.seq.Add(1)
			body := fmt.Sprintf(`{"email":"bench-reg-%d-%s@example.test","password":"pw %s","name":"Bench %d"}`, n, randToken()[:8], randToken()[:16], n)
			r, err := postJSON(ctx, rc.client(), e.f.base+"/api/v1/register", "", body)
			if err != nil {
				return err
			}
			if r.Status != http.StatusCreated {
				return r.unexpected("register")
			}
			return nil
		}, nil
	}
}

// spendWorker spends 1 credit per op through the service API, each with a
// fresh reference, on a random one of the 1,000 users or on the hot one.
func spendWorker(hot bool) func(e *scenarioEnv) NewWorker {
	return func(e *scenarioEnv) NewWorker {
		return func(_ context.Context, i int) (Op, error) {
			return func(ctx context.Context) error {
				user := e.f.hotUser
				if !hot {
					user = e.f.spendUsers[rand.IntN(len(e.f.spendUsers))]
				}
				body := fmt.Sprintf(`{"amount":1,"reference":"bench-%s-%d","description":"bench"}`, randToken()[:10], e.seq.Add(1))
				r, err := postJSON(ctx, e.client, e.f.base+"/api/v1/users/"+user+"/credits/spend", e.svcToken, body)
				if err != nil {
					return err
				}
				if r.Status != http.StatusOK && r.Status != http.StatusCreated {
					return r.unexpected("spend")
				}
				return nil
			}, nil
		}
	}
}

// mixedWorker: 70% introspection, 20% client_credentials, 10% refresh.
func mixedWorker(e *scenarioEnv) NewWorker {
	return func(ctx context.Context, i int) (Op, error) {
		if i >= len(e.f.chains) {
			return nil, fmt.Errorf("only %d refresh chains prepared", len(e.f.chains))
		}
		if err := e.renewAtStartup(ctx, i); err != nil {
			return nil, err
		}
		intro, cc, ref := introspectOp(e, i), ccOp(e), refreshOp(e, i, false)
		return func(ctx context.Context) error {
			switch p := rand.IntN(100); {
			case p < 70:
				return intro(ctx)
			case p < 90:
				return cc(ctx)
			default:
				return ref(ctx)
			}
		}, nil
	}
}
