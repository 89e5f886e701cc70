package oauth

import (
	"context"
	"net/http"
	"net/url"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/audit"
	loginui "github.com/authd/authd/login-ui"
)

// Accounts is what the provider needs of the user accounts
// (*accounts.Service): the password grant's credential check and its audit
// event, the user behind a token (live, or from the access cache), and the
// browser session behind the login cookie, and the second factors a user
// holds or must hold.
type Accounts interface {
	Authenticate(ctx context.Context, email, password string) (*accounts.User, error)
	RecordLogin(ctx context.Context, origin audit.Event, u *accounts.User, err error)
	User(ctx context.Context, id string) (*accounts.User, error)
	CachedAccess(ctx context.Context, userID string) (*accounts.Access, error)
	// CachedAccessVia reads through q (a rotation's locked transaction).
	CachedAccessVia(ctx context.Context, q accounts.RowQuerier, userID string) (*accounts.Access, error)
	Factors(ctx context.Context, userID string) ([]string, error)
	MFARequired(u *accounts.User, demanded bool) bool
	MFAOwed(u *accounts.User, sess *accounts.Session, demanded bool) bool
	SessionByToken(ctx context.Context, token string) (*accounts.Session, *accounts.User, error)
	RevokeSessionByToken(ctx context.Context, token string) error
	// Metrics counts password-grant attempts refused before Authenticate.
	Metrics() *accounts.Metrics
}

// Pages is what the provider needs of the hosted pages (*loginui.UI): the
// browser session cookie, the CSRF check of its own forms (consent, device,
// logout) and the page renderer.
type Pages interface {
	SessionToken(r *http.Request) string
	ClearSessionCookie(w http.ResponseWriter)
	CheckCSRF(r *http.Request) bool
	Render(w http.ResponseWriter, r *http.Request, status int, name string, p loginui.Page)
	RenderFailure(w http.ResponseWriter, r *http.Request, loggedIn bool, what string, err error)
	RenderError(ctx context.Context, w http.ResponseWriter, status int, title string, e loginui.ErrorData)
	RenderFormPost(ctx context.Context, w http.ResponseWriter, action string, params url.Values)
}

var (
	_ Accounts = (*accounts.Service)(nil)
	_ Pages    = (*loginui.UI)(nil)
)
