package oauth

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/ory/fosite"

	"github.com/authd/authd/internal/authn"
)

// userinfo is GET|POST /userinfo (OIDC Core §5.3): the bearer access token
// must hold scope openid and belong to a user; claims follow the granted
// scopes, read live.
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	tok, ok := authn.BearerToken(r)
	if !ok && r.Method == http.MethodPost {
		if err := r.ParseForm(); err == nil {
			tok = r.PostForm.Get("access_token") // RFC 6750 §2.2
			ok = tok != ""
		}
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="authd"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	pr, err := p.VerifyAccessToken(ctx, tok)
	if errors.Is(err, authn.ErrInvalidToken) || (err == nil && !pr.IsUser()) {
		bearerError(w, http.StatusUnauthorized, "invalid_token", "The access token is invalid, expired or revoked.")
		return
	}
	if _, ok := asUnavailable(err); ok {
		writeUnavailable(w)
		return
	}
	if err != nil {
		p.logOAuthError(ctx, "userinfo", fosite.ErrServerError.WithWrap(err))
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	if !pr.HasScope("openid") {
		bearerError(w, http.StatusForbidden, "insufficient_scope", "The access token lacks scope openid.")
		return
	}
	u, err := p.liveUser(ctx, pr.UserID)
	if _, ok := asUnavailable(err); ok {
		writeUnavailable(w)
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
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}
