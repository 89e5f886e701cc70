package oauth

import (
	"time"

	"github.com/mohae/deepcopy"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// Session is the one session type given to every fosite call (authorize,
// token, introspection): the OIDC claims, the access-token claims and the
// roles. It is stored as JSON by the store, so every field round-trips.
type Session struct {
	*openid.DefaultSession `json:"id_token"`
	// Extra becomes top-level access-token claims and is returned by
	// introspection (fosite.ExtraClaimsSession): client_id and roles.
	Extra    map[string]interface{} `json:"extra"`
	ClientID string                 `json:"client_id"`
	// BrowserSessionID is the hosted-page session the grant came from, so
	// ending that session can revoke exactly its tokens
	// (fositestore.RevokeSessionTokens). Never put in a token.
	BrowserSessionID string `json:"browser_session_id,omitempty"`
}

var (
	_ oauth2.JWTSessionContainer = (*Session)(nil)
	_ openid.Session             = (*Session)(nil)
	_ fosite.ExtraClaimsSession  = (*Session)(nil)
)

// NewSession returns a session for subject; an empty subject makes the empty
// shell fosite hydrates from storage.
func NewSession(subject string) *Session {
	return &Session{
		DefaultSession: &openid.DefaultSession{
			Claims:  &jwt.IDTokenClaims{Subject: subject, Extra: map[string]interface{}{}},
			Headers: &jwt.Headers{Extra: map[string]interface{}{}},
			Subject: subject,
		},
		Extra: map[string]interface{}{},
	}
}

// setRoles puts roles into the access-token claims and introspection, and
// into the ID token when idToken (scope roles or profile). The claim is
// always a JSON array.
func (s *Session) setRoles(roles []string, idToken bool) {
	if roles == nil {
		roles = []string{}
	}
	if s.Extra == nil {
		s.Extra = map[string]interface{}{}
	}
	s.Extra["roles"] = roles
	if s.Claims != nil && idToken {
		if s.Claims.Extra == nil {
			s.Claims.Extra = map[string]interface{}{}
		}
		s.Claims.Extra["roles"] = roles
	}
}

// GetJWTClaims builds the RFC 9068 access-token claims. fosite's strategy
// adds exp, scope, aud, iss and a fresh jti per token.
func (s *Session) GetJWTClaims() jwt.JWTClaimsContainer {
	x := map[string]interface{}{"client_id": s.ClientID}
	for k, v := range s.Extra {
		x[k] = v
	}
	if _, ok := x["roles"]; !ok {
		x["roles"] = []string{}
	}
	// RFC 9068 §2.2.1: auth_time lets authd's own APIs ask for a recent
	// login before changing the password or email.
	if s.Claims != nil && !s.Claims.AuthTime.IsZero() {
		x["auth_time"] = s.Claims.AuthTime.Unix()
	}
	now := time.Now().UTC()
	return &jwt.JWTClaims{
		Subject:   s.Subject,
		IssuedAt:  now,
		NotBefore: now,
		ExpiresAt: s.GetExpiresAt(fosite.AccessToken),
		Extra:     x,
	}
}

// GetJWTHeader is the access-token header. No kid here: the signer adds the
// kid of the key it actually uses (a stored kid would go stale on rotation).
func (s *Session) GetJWTHeader() *jwt.Headers {
	return &jwt.Headers{Extra: map[string]interface{}{"typ": "at+jwt"}}
}

// GetExtraClaims is what introspection adds to its response.
func (s *Session) GetExtraClaims() map[string]interface{} {
	if s == nil {
		return nil
	}
	return s.Extra
}

// Clone must be overridden: the promoted DefaultSession.Clone returns an
// *openid.DefaultSession, and a refresh would then lose Extra and ClientID.
func (s *Session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	return deepcopy.Copy(s).(fosite.Session)
}
