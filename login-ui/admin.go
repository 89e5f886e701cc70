package loginui

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gorilla/mux"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/ledger"
	"github.com/authd/authd/oauth/keys"
	"github.com/authd/authd/storage"
)

// AdminRole is the role that opens the console.
const AdminRole = "admin"

// ConsoleLedger is what the console needs of the credit ledger
// (*ledger.Ledger). Grant records its own audit event in its transaction.
type ConsoleLedger interface {
	Balance(ctx context.Context, userID string) (int64, error)
	List(ctx context.Context, userID string, p ledger.Page) (ledger.History, error)
	Grant(ctx context.Context, p ledger.Posting) (ledger.Result, error)
	Refund(ctx context.Context, p ledger.RefundPosting) (ledger.Result, error)
}

// ConsoleKeys is what the console needs of the signing keys (*keys.Manager).
type ConsoleKeys interface {
	List(ctx context.Context) ([]keys.KeyInfo, error)
	RotateAndRecord(ctx context.Context, record func(ctx context.Context, q storage.Querier, activating []string) error) error
}

// Console serves the admin console under /admin: server-rendered pages for
// users whose roles include admin. Every other logged-in user gets 403 and
// anonymous browsers are sent to the login page. Every change is a POST with
// a CSRF token, done by the same domain method as the admin API, which
// records the audit event in the change's transaction.
type Console struct {
	UI       *UI
	Accounts *accounts.Service
	Ledger   ConsoleLedger
	Keys     ConsoleKeys
	Clients  ConsoleClients
	// Apps, when set, lists the apps a user allowed on their page.
	Apps AccountApps
	// ConfirmGrantAbove is the largest credit grant that needs no fresh
	// proof of presence (password or recent login); 0 means 1000.
	ConfirmGrantAbove int64
	Log               *zap.Logger
}

// consoleReq is one console request of a signed-in administrator.
type consoleReq struct {
	admin   *accounts.User
	session *accounts.Session
}

// origin is the audit actor and request facts of the admin's change.
func (a consoleReq) origin(r *http.Request) audit.Event {
	return audit.Event{ActorType: audit.ActorAdmin, ActorID: a.admin.ID}.FromRequest(r)
}

// Mount registers the console's routes on r.
func (c *Console) Mount(r *mux.Router) {
	get := func(path string, fn consoleHandler) {
		r.HandleFunc(path, c.guard(fn)).Methods(http.MethodGet, http.MethodHead)
	}
	post := func(path string, fn consoleHandler) {
		r.HandleFunc(path, c.guard(fn)).Methods(http.MethodPost)
	}
	get("/admin", c.home)
	get("/admin/users", c.users)
	get("/admin/users/{id}", c.user)
	post("/admin/users/{id}/roles/add", c.addRole)
	post("/admin/users/{id}/roles/remove", c.removeRole)
	post("/admin/users/{id}/sessions/end", c.endSession)
	post("/admin/users/{id}/credits/grant", c.grant)
	post("/admin/users/{id}/credits/refund", c.refund)
	post("/admin/users/{id}/disable", c.setDisabled(true))
	post("/admin/users/{id}/enable", c.setDisabled(false))
	post("/admin/users/{id}/delete", c.deleteUser)
	post("/admin/users/{id}/mfa/reset", c.resetFactors)
	get("/admin/roles", c.roles)
	post("/admin/roles", c.createRole)
	post("/admin/roles/{name}/delete", c.deleteRole)
	get("/admin/audit", c.audit)
	if c.Clients != nil {
		get("/admin/clients", c.clients)
		post("/admin/clients", c.createClient)
		get("/admin/clients/{client}", c.client)
		post("/admin/clients/{client}", c.updateClient)
		post("/admin/clients/{client}/secret", c.rotateClientSecret)
		post("/admin/clients/{client}/delete", c.deleteClient)
	}
	if c.Keys != nil {
		get("/admin/keys", c.keys)
		post("/admin/keys/rotate", c.rotateKeys)
	}
}

type consoleHandler func(w http.ResponseWriter, r *http.Request, a consoleReq)

// guard admits administrators only, and on POST only with the form's CSRF
// token. The checks run before any handler reads its input, so a refused
// request changes nothing.
func (c *Console) guard(fn consoleHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, u, err := c.Accounts.SessionByToken(r.Context(), c.UI.SessionToken(r))
		switch {
		case errors.Is(err, accounts.ErrNoSession):
			back := "/admin"
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				back = r.URL.RequestURI()
			}
			http.Redirect(w, r, "/login?"+url.Values{"return_to": {back}}.Encode(), http.StatusSeeOther)
			return
		case err != nil:
			c.fail(w, r, "admin console: session", err)
			return
		}
		if !slices.Contains(u.Roles, AdminRole) {
			c.UI.Render(w, r, http.StatusForbidden, "message", Page{Title: "Not allowed", LoggedIn: true,
				Data: "The admin console is for administrators. Your account does not have the admin role."})
			return
		}
		if c.Accounts.MFAOwed(u, sess, false) {
			// The role policy wants a second factor this session's login
			// did not pass: log in again (the login asks for it).
			back := "/admin"
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				back = r.URL.RequestURI()
			}
			http.Redirect(w, r, "/login?"+url.Values{"return_to": {back}}.Encode(), http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil || !c.UI.CheckCSRF(r) {
				c.UI.Render(w, r, http.StatusForbidden, "message", Page{Title: "Request expired", LoggedIn: true,
					Error: "This form has expired. Please go back, reload the page and try again."})
				return
			}
		}
		fn(w, r, consoleReq{admin: u, session: sess})
	}
}

// fail renders a generic failure and logs the cause.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	c.UI.RenderFailure(w, r, true, what, err)
}

func (c *Console) home(w http.ResponseWriter, r *http.Request, _ consoleReq) {
	http.Redirect(w, r, "/admin/users", http.StatusSeeOther)
}

// isSelf reports whether the user id in a path is the admin's own, however
// its hex digits are cased (ids are UUIDs, compared as Postgres does).
func (a consoleReq) isSelf(id string) bool {
	return strings.EqualFold(strings.TrimSpace(id), a.admin.ID)
}

// confirm checks the admin's presence before a sensitive action: the
// password typed in the form's current_password field, or a recent login.
// It returns the message to show and its status, or "" when confirmed.
func (c *Console) confirm(ctx context.Context, r *http.Request, a consoleReq) (string, int, error) {
	err := c.Accounts.ConfirmPresence(ctx, a.admin, a.session, r.PostFormValue("current_password"))
	var te *accounts.ThrottledError
	switch {
	case err == nil:
		return "", 0, nil
	case errors.Is(err, accounts.ErrReauthRequired):
		return "This action needs your password: enter it to confirm (or log in again).", http.StatusForbidden, nil
	case errors.Is(err, accounts.ErrWrongPassword):
		return "Your password is not correct.", http.StatusForbidden, nil
	case errors.As(err, &te):
		return "Too many wrong passwords. Please wait and try again.", http.StatusTooManyRequests, nil
	}
	return "", 0, err
}

// ConsoleReturnTo reports whether s is a console page (/admin or below,
// with an optional query) that the login page may return to.
func ConsoleReturnTo(s string) (string, bool) {
	if len(s) > 2048 || strings.ContainsAny(s, "\\\r\n\t") || strings.HasPrefix(s, "//") {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Fragment != "" {
		return "", false
	}
	if (u.Path != "/admin" && !strings.HasPrefix(u.Path, "/admin/")) || strings.HasPrefix(u.Path, "/admin/v1") || strings.Contains(u.Path, "..") {
		return "", false
	}
	return u.RequestURI(), true
}
