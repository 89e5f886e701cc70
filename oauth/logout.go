package oauth

import (
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/ory/fosite/token/jwt"
	"go.uber.org/zap"

	"github.com/authd/authd/internal/reqctx"
	loginui "github.com/authd/authd/login-ui"
	"github.com/authd/authd/storage/fositestore"
)

// rpLogout is GET|POST /oauth2/logout, OIDC RP-Initiated Logout 1.0. With a
// valid id_token_hint (expired is fine) naming the logged-in user, the
// browser session ends at once; a post_logout_redirect_uri must be one the
// hinted (or client_id) client registered, and gets state back. Without a
// usable hint the user is asked to confirm, so a cross-site link cannot log
// anyone out.
func (p *Provider) rpLogout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		p.logoutError(w, r, "The logout request is malformed.")
		return
	}
	hint := r.Form.Get("id_token_hint")
	clientID := r.Form.Get("client_id")
	redirect := r.Form.Get("post_logout_redirect_uri")
	var sub string
	if hint != "" {
		t, err := p.idSigner.Decode(ctx, hint)
		var ve *jwt.ValidationError
		if err != nil && !(errors.As(err, &ve) && ve.Errors == jwt.ValidationErrorExpired) {
			p.logoutError(w, r, "The id_token_hint is not a valid ID token from this server.")
			return
		}
		if iss, _ := t.Claims["iss"].(string); iss != p.cfg.Issuer {
			p.logoutError(w, r, "The id_token_hint was issued by another server.")
			return
		}
		sub, _ = t.Claims["sub"].(string)
		aud := audOf(t.Claims)
		if clientID == "" && len(aud) > 0 {
			clientID = aud[0]
		} else if clientID != "" && !slices.Contains(aud, clientID) {
			p.logoutError(w, r, "client_id does not match the id_token_hint.")
			return
		}
	}
	if redirect != "" {
		c, err := p.store.Client(ctx, clientID)
		if err != nil || !slices.Contains(c.PostLogoutRedirectURIs, redirect) {
			if err != nil && !errors.Is(err, fositestore.ErrNotFound) {
				reqctx.Logger(ctx).Error("logout: load client", zap.Error(err))
			}
			p.logoutError(w, r, "The post_logout_redirect_uri is not registered for this client.")
			return
		}
		u, _ := url.Parse(redirect)
		if st := r.Form.Get("state"); st != "" {
			q := u.Query()
			q.Set("state", st)
			u.RawQuery = q.Encode()
		}
		redirect = u.String()
	}

	token := p.ui.SessionToken(r)
	_, user, err := p.accts.SessionByToken(ctx, token)
	confirmed := r.Method == http.MethodPost && r.PostForm.Get("confirm") == "yes" && p.ui.CheckCSRF(r)
	switch {
	case err == nil && (confirmed || (sub != "" && user.ID == sub)):
		if err := p.accts.RevokeSessionByToken(ctx, token); err != nil {
			reqctx.Logger(ctx).Error("logout: revoke session", zap.Error(err))
			p.logoutError(w, r, "Logging out failed; please try again.")
			return
		}
		p.ui.ClearSessionCookie(w)
	case err == nil:
		// A session, but no hint proving the RP speaks for this user: ask.
		p.ui.Render(w, r, http.StatusOK, "login", loginui.Page{Title: "Log out?", LoggedIn: true,
			Data: loginui.LoginData{ConfirmLogout: true, Email: user.Email, Hidden: []loginui.Field{
				{Name: "client_id", Value: clientID},
				{Name: "post_logout_redirect_uri", Value: r.Form.Get("post_logout_redirect_uri")},
				{Name: "state", Value: r.Form.Get("state")},
			}}})
		return
	}
	if redirect != "" {
		http.Redirect(w, r, redirect, http.StatusSeeOther)
		return
	}
	p.ui.Render(w, r, http.StatusOK, "message", loginui.Page{Title: "Logged out", Notice: "You have been logged out.",
		Data: "You can close this window."})
}

func (p *Provider) logoutError(w http.ResponseWriter, r *http.Request, msg string) {
	p.ui.Render(w, r, http.StatusBadRequest, "message", loginui.Page{Title: "Logout failed", Error: msg})
}

func audOf(c jwt.MapClaims) []string {
	switch v := c["aud"].(type) {
	case string:
		return []string{v}
	case []interface{}:
		out := []string{}
		for _, a := range v {
			if s, ok := a.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
