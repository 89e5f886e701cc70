package oauth

import (
	"encoding/json"
	"net/http"

	"github.com/ory/fosite"

	"github.com/authd/authd/internal/authn"
)

// MountUserinfo registers GET|POST /userinfo on rt, whose guard should
// answer refusals with DenyBearer (OAuth-style JSON, as OIDC clients expect).
func (p *Provider) MountUserinfo(rt *authn.Router) {
	// OIDC Core §5.3: a user's access token for authd's audience carrying
	// openid, in the header or, on POST, the form (RFC 6750 §2.2).
	pol := authn.Policy{Callers: authn.User, Scopes: []string{"openid"}, FormToken: true}
	rt.HandleFunc(http.MethodGet, "/userinfo", pol, p.userinfo)
	rt.HandleFunc(http.MethodPost, "/userinfo", pol, p.userinfo)
}

// DenyBearer writes a refusal of /userinfo as RFC 6750 describes it.
func (p *Provider) DenyBearer(w http.ResponseWriter, r *http.Request, d authn.Denial) {
	w.Header().Set("Cache-Control", "no-store")
	if d.Err != nil {
		if _, ok := asUnavailable(d.Err); ok {
			writeUnavailable(w, d.Err)
			return
		}
		p.logOAuthError(r.Context(), "userinfo", fosite.ErrServerError.WithWrap(d.Err))
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	if d.Code == "" {
		w.Header().Set("WWW-Authenticate", d.Challenge())
		w.WriteHeader(d.Status)
		return
	}
	w.Header().Set("WWW-Authenticate", d.Challenge())
	writeError(w, d.Status, d.Code, d.Detail)
}

// userinfo answers claims that follow the granted scopes, read live.
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	pr := authn.FromContext(ctx)
	u, err := p.liveUser(ctx, pr.UserID)
	if _, ok := asUnavailable(err); ok {
		writeUnavailable(w, err)
		return
	}
	if err != nil || u == nil {
		bearerError(w, http.StatusUnauthorized, "invalid_token", "The user no longer exists.")
		return
	}
	claims := map[string]interface{}{"sub": u.ID}
	if pr.HasScope("email") {
		claims["email"] = u.Email
		claims["email_verified"] = u.EmailVerified
	}
	if pr.HasScope("profile") {
		claims["name"] = u.Name
	}
	if pr.HasScope("roles") || pr.HasScope("profile") {
		claims["roles"] = u.Roles
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(claims)
}

func bearerError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="authd", error="`+code+`", error_description="`+desc+`"`)
	writeError(w, status, code, desc)
}
