package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync/atomic"

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
// mixed scenario replaces it, revoking the old one).
func introspectOp(e *scenarioEnv, i int) Op {
	return func(ctx context.Context) error {
		tok := e.f.userTokens[i]
		r, err := postForm(ctx, e.client, e.f.base+"/oauth2/introspect", url.Values{"token": {tok}}, e.f.svcID, e.f.svcSecret)
		if err != nil {
			return err
		}
		if r.Status != http.StatusOK || !bytes.Contains(r.Body, activeTrue) {
			return r.unexpected("introspection of a live token")
		}
		return nil
	}
}

func introspectWorker(e *scenarioEnv) NewWorker {
	return func(_ context.Context, i int) (Op, error) {
		if i >= len(e.f.userTokens) {
			return nil, fmt.Errorf("only %d user tokens prepared", len(e.f.userTokens))
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

// refreshOp rotates worker i's chain. After a failure the old token is
// kept: presenting it again within the reuse window is an idempotent retry.
func refreshOp(e *scenarioEnv, i int, oidc bool) Op {
	return func(ctx context.Context) error {
		chain := &e.f.chains[i]
		if oidc {
			chain = &e.f.oidcChains[i]
		}
		t, err := e.f.web.refresh(ctx, e.client, *chain)
		if err != nil {
			return err
		}
		*chain = t.RefreshToken
		if !oidc {
			e.f.userTokens[i] = t.AccessToken
		}
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
