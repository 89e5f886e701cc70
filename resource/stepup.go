package resource

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// StepUp is what a resource demands of the user's login (RFC 9470): an
// authentication context class and a maximum age. A token that falls
// short is answered 401 with
//
//	WWW-Authenticate: Bearer error="insufficient_user_authentication",
//	  error_description="…", acr_values="…", max_age=N
//
// and the client sends the user back to authd's authorization endpoint
// with those acr_values and max_age, which log the user in as required.
type StepUp struct {
	// ACRValues are the acceptable acr classes, any one will do, e.g.
	// "urn:authd:acr:mfa" (authd lists its classes in discovery's
	// acr_values_supported). Empty: any class.
	ACRValues []string
	// MaxAge bounds the time since the user logged in (auth_time); 0:
	// any age.
	MaxAge time.Duration
}

// Met reports whether the token's claims (acr, auth_time) satisfy s at now.
func (s StepUp) Met(c *Claims, now time.Time) bool {
	if c == nil {
		return false
	}
	if len(s.ACRValues) > 0 {
		acr, _ := c.Raw["acr"].(string)
		if !slices.Contains(s.ACRValues, acr) {
			return false
		}
	}
	if s.MaxAge > 0 {
		at, ok := authTime(c.Raw["auth_time"])
		if !ok || now.Sub(at) > s.MaxAge {
			return false
		}
	}
	return true
}

// RequireAuthentication returns middleware that answers the RFC 9470
// challenge unless the token (verified by Require, which must run first)
// satisfies s.
func (v *Verifier) RequireAuthentication(s StepUp) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !s.Met(ClaimsFrom(r.Context()), v.cfg.Now()) {
				WriteStepUpChallenge(w, v.cfg.Realm, s, "")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// WriteStepUpChallenge answers 401 with the RFC 9470 challenge for s (and
// a problem document with the same description), for handlers that decide
// by themselves when a stronger login is needed. realm and desc may be "".
func WriteStepUpChallenge(w http.ResponseWriter, realm string, s StepUp, desc string) {
	if desc == "" {
		desc = "a stronger or more recent login is required"
	}
	var params []string
	if realm != "" {
		params = append(params, fmt.Sprintf("realm=%s", quote(realm)))
	}
	params = append(params, `error="insufficient_user_authentication"`, fmt.Sprintf("error_description=%s", quote(desc)))
	if len(s.ACRValues) > 0 {
		params = append(params, fmt.Sprintf("acr_values=%s", quote(strings.Join(s.ACRValues, " "))))
	}
	if s.MaxAge > 0 {
		params = append(params, "max_age="+strconv.FormatInt(int64(s.MaxAge/time.Second), 10))
	}
	w.Header().Set("WWW-Authenticate", "Bearer "+strings.Join(params, ", "))
	writeProblem(w, http.StatusUnauthorized, desc)
}

// authTime reads auth_time as the verifier decodes it (json.Number), or as
// a float64 from claims built elsewhere.
func authTime(v any) (time.Time, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return time.Unix(i, 0), err == nil
	case float64:
		return time.Unix(int64(n), 0), true
	}
	return time.Time{}, false
}
