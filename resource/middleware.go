package resource

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Require returns next behind token verification: a request without a
// valid bearer token is answered 401 (503 if authd cannot be reached) and
// never reaches next; otherwise next finds the claims with ClaimsFrom.
func (v *Verifier) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearerToken(r)
		if !ok {
			// RFC 6750 §3.1: no error code when no credentials were sent.
			v.challenge(w, http.StatusUnauthorized, "", "", "an access token is required")
			return
		}
		c, err := v.Verify(r.Context(), tok)
		switch {
		case errors.Is(err, ErrInvalidToken):
			v.challenge(w, http.StatusUnauthorized, "invalid_token", "",
				"the access token is invalid, expired or revoked")
			return
		case err != nil:
			w.Header().Set("Retry-After", "5")
			writeProblem(w, http.StatusServiceUnavailable, "the authorization server cannot be reached")
			return
		}
		next.ServeHTTP(w, r.WithContext(WithClaims(r.Context(), c)))
	})
}

// RequireScope returns middleware that answers 403 insufficient_scope
// unless the token (verified by Require, which must run first) was granted
// every one of scopes.
func (v *Verifier) RequireScope(scopes ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c := ClaimsFrom(r.Context())
			for _, s := range scopes {
				if !c.HasScope(s) {
					v.challenge(w, http.StatusForbidden, "insufficient_scope", strings.Join(scopes, " "),
						fmt.Sprintf("the access token lacks scope %q", s))
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// RequireRole returns middleware that answers 403 insufficient_scope unless
// the token's user holds role (one of roles, when several are given). A
// client-only token has no roles.
func (v *Verifier) RequireRole(roles ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c := ClaimsFrom(r.Context())
			for _, role := range roles {
				if c.HasRole(role) {
					next.ServeHTTP(w, r)
					return
				}
			}
			v.challenge(w, http.StatusForbidden, "insufficient_scope", "",
				fmt.Sprintf("the user needs role %s", strings.Join(roles, " or ")))
		})
	}
}

// challenge writes an RFC 6750 §3 WWW-Authenticate challenge and a problem
// document with the same description.
func (v *Verifier) challenge(w http.ResponseWriter, status int, code, scope, desc string) {
	var params []string
	if v.cfg.Realm != "" {
		params = append(params, fmt.Sprintf("realm=%s", quote(v.cfg.Realm)))
	}
	if code != "" {
		params = append(params, fmt.Sprintf("error=%s", quote(code)), fmt.Sprintf("error_description=%s", quote(desc)))
	}
	if scope != "" {
		params = append(params, fmt.Sprintf("scope=%s", quote(scope)))
	}
	h := "Bearer"
	if len(params) > 0 {
		h += " " + strings.Join(params, ", ")
	}
	w.Header().Set("WWW-Authenticate", h)
	writeProblem(w, status, desc)
}

// quote makes an RFC 9110 quoted-string; the values here are ours, but a
// realm comes from configuration.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail,
	})
}

// bearerToken reads Authorization: Bearer (RFC 6750 §2.1 only: tokens in
// query strings leak into logs and are not accepted).
func bearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
