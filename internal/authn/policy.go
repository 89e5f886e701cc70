package authn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/authd/authd/internal/problem"
)

// Caller is a class of bearer: who a route lets in.
type Caller uint8

const (
	// User is a token acting for a user (authorization code, password or
	// refresh grant).
	User Caller = 1 << iota
	// Service is a client-credentials token: a client acting for itself.
	Service
	// Admin is a user token holding role admin and scope admin issued to a
	// first-party client, or a service token holding scope admin (IsAdmin;
	// the guard checks the client). Scopes are not asked of an admin:
	// scope admin is the admin's scope.
	Admin
)

func (c Caller) String() string {
	var parts []string
	for _, x := range []struct {
		c    Caller
		name string
	}{{User, "user"}, {Service, "service"}, {Admin, "admin"}} {
		if c&x.c != 0 {
			parts = append(parts, x.name)
		}
	}
	return strings.Join(parts, "|")
}

// Policy is who may call one route. Every route under authd's own APIs is
// registered with one (Router.Handle), and a test walks the router to fail
// on any route without it.
type Policy struct {
	// Public routes take no token at all (registration, password reset);
	// every other field is then ignored.
	Public bool
	// Callers are the bearer classes let in.
	Callers Caller
	// Scopes: a User or Service bearer must hold at least one of them. An
	// empty list lets in any token of an allowed class.
	Scopes []string
	// FirstParty restricts the route to tokens issued to first-party
	// clients (authd's own pages and apps the operator flagged), checked at
	// every call so unflagging a client stops its tokens at once.
	FirstParty bool
	// FormToken also accepts the token as an access_token form parameter
	// of a POST (RFC 6750 §2.2); only /userinfo, which OIDC requires to.
	FormToken bool
}

// ClientDirectory answers what the guard needs to know about a client.
type ClientDirectory interface {
	IsFirstParty(ctx context.Context, clientID string) (bool, error)
}

// Guard enforces Policies. Audience is the value every token's aud must
// contain: authd's API audience, so a token issued for a resource server
// is refused everywhere in authd.
type Guard struct {
	Verifier Verifier
	Audience string
	Clients  ClientDirectory
	// Deny writes a refusal. nil writes problem+json (the JSON APIs);
	// /userinfo passes an OAuth-style writer.
	Deny func(w http.ResponseWriter, r *http.Request, d Denial)
}

// Denial is why a request was refused, for the error writer.
type Denial struct {
	Status int    // 401 or 403
	Code   string // RFC 6750: invalid_token, insufficient_scope, or "" when no token was sent
	Detail string
	Scopes []string // for insufficient_scope
	Err    error    // a server-side failure (database); Status is then 0
}

// Challenge is the RFC 6750 WWW-Authenticate value for d.
func (d Denial) Challenge() string {
	if d.Code == "" {
		return `Bearer realm="authd"`
	}
	c := fmt.Sprintf(`Bearer realm="authd", error=%q, error_description=%q`, d.Code, d.Detail)
	if len(d.Scopes) > 0 {
		c += fmt.Sprintf(", scope=%q", strings.Join(d.Scopes, " "))
	}
	return c
}

// Router registers routes with their policies on a gorilla/mux router.
// Policies records every registration, for the test that walks the router.
type Router struct {
	mux   *mux.Router
	guard *Guard
	table *Table
}

// Table is the policy of every route registered through Routers sharing it.
type Table struct {
	byRoute map[*mux.Route]Policy
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{byRoute: map[*mux.Route]Policy{}} }

// Lookup returns the policy registered for rt.
func (t *Table) Lookup(rt *mux.Route) (Policy, bool) {
	p, ok := t.byRoute[rt]
	return p, ok
}

// NewRouter returns a Router that registers on m, guarded by g, recording
// into t.
func NewRouter(m *mux.Router, g *Guard, t *Table) *Router {
	return &Router{mux: m, guard: g, table: t}
}

// Handle registers h for method and path under pol.
func (rt *Router) Handle(method, path string, pol Policy, h http.Handler) {
	route := rt.mux.Handle(path, rt.guard.enforce(pol, h)).Methods(method)
	rt.table.byRoute[route] = pol
}

// HandleFunc is Handle for a function.
func (rt *Router) HandleFunc(method, path string, pol Policy, h http.HandlerFunc) {
	rt.Handle(method, path, pol, h)
}

// AdminFunc registers h for method and path for admins only (Callers:
// Admin), the policy of every admin API route.
func (rt *Router) AdminFunc(method, path string, h http.HandlerFunc) {
	rt.Handle(method, path, Policy{Callers: Admin}, h)
}

// enforce wraps h with pol's checks. The order matters to what a refused
// caller learns: authentication (401), then audience (401: the token is
// not for us), then class and scope (403).
func (g *Guard) enforce(pol Policy, h http.Handler) http.Handler {
	if pol.Public {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, d := g.Authorize(r, pol)
		if d != nil {
			g.deny(w, r, *d)
			return
		}
		h.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// Authorize decides pol for r: the Principal, or why not.
func (g *Guard) Authorize(r *http.Request, pol Policy) (*Principal, *Denial) {
	tok, ok := BearerToken(r)
	if !ok && pol.FormToken && r.Method == http.MethodPost {
		if err := r.ParseForm(); err == nil {
			tok = r.PostForm.Get("access_token")
			ok = tok != ""
		}
	}
	if !ok {
		return nil, &Denial{Status: http.StatusUnauthorized, Detail: "a bearer access token is required"}
	}
	ctx := r.Context()
	p, err := g.Verifier.VerifyAccessToken(ctx, tok)
	if err != nil {
		if !errors.Is(err, ErrInvalidToken) {
			return nil, &Denial{Err: err}
		}
		return nil, &Denial{Status: http.StatusUnauthorized, Code: "invalid_token", Detail: "the access token is invalid, expired or revoked"}
	}
	if !slices.Contains(p.Audience, g.Audience) {
		return nil, &Denial{Status: http.StatusUnauthorized, Code: "invalid_token", Detail: "the access token was not issued for this API"}
	}
	// A user's admin token is an admin's only from a first-party client: a
	// third-party app an admin consented to must not act as them on the
	// admin API. A service's own admin scope is the operator's automation.
	firstParty := func() (bool, error) { return g.Clients.IsFirstParty(ctx, p.ClientID) }
	asAdmin := pol.Callers&Admin != 0 && IsAdmin(p)
	if asAdmin && p.IsUser() {
		fp, err := firstParty()
		if err != nil {
			return nil, &Denial{Err: err}
		}
		asAdmin = fp
	}
	if !asAdmin && !pol.admitsClass(p) {
		return nil, &Denial{Status: http.StatusForbidden, Code: "insufficient_scope", Scopes: pol.challengeScopes(),
			Detail: "the access token does not allow this request"}
	}
	if pol.FirstParty {
		fp, err := firstParty()
		if err != nil {
			return nil, &Denial{Err: err}
		}
		if !fp {
			return nil, &Denial{Status: http.StatusForbidden, Code: "insufficient_scope", Scopes: pol.challengeScopes(),
				Detail: "only first-party clients may make this request"}
		}
	}
	return p, nil
}

// admitsClass reports whether p's class (user or service) and scopes
// satisfy pol, admins aside.
func (pol Policy) admitsClass(p *Principal) bool {
	class := Service
	if p.IsUser() {
		class = User
	}
	if pol.Callers&class == 0 {
		return false
	}
	return len(pol.Scopes) == 0 || slices.ContainsFunc(pol.Scopes, p.HasScope)
}

func (pol Policy) challengeScopes() []string {
	if len(pol.Scopes) == 0 && pol.Callers&Admin != 0 {
		return []string{"admin"}
	}
	return pol.Scopes
}

func (g *Guard) deny(w http.ResponseWriter, r *http.Request, d Denial) {
	if g.Deny != nil {
		g.Deny(w, r, d)
		return
	}
	if d.Err != nil {
		problem.Write(w, r, d.Err) // database down and the like: not the client's fault
		return
	}
	w.Header().Set("WWW-Authenticate", d.Challenge())
	if d.Status == http.StatusForbidden {
		problem.Write(w, r, problem.ErrForbidden)
		return
	}
	problem.Write(w, r, problem.ErrUnauthorized)
}
