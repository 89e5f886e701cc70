package oauth

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/ory/fosite"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/reqctx"
	"github.com/authd/authd/storage/fositestore"
)

// introspect is POST /oauth2/introspect (RFC 7662). fosite would let any
// authenticated client, or any bearer token, introspect any token, so the
// caller is checked here first (DESIGN, wire details): a confidential
// client authenticated by any of its registered methods, which either holds
// scope introspect or is the client the token was issued to. A disabled or
// deleted user's tokens are inactive; roles and the disabled flag come from
// the accounts cache (Provider.userAccess), which a change invalidates.
func (p *Provider) introspect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if err := r.ParseForm(); err != nil {
		p.op.WriteIntrospectionError(ctx, w, fosite.ErrInvalidRequest.WithHint("Malformed form body."))
		return
	}
	caller, err := p.fosite().AuthenticateClient(ctx, r, r.PostForm)
	if err != nil {
		p.logOAuthError(ctx, "introspect", err)
		if _, ok := asUnavailable(err); ok {
			writeUnavailable(w, err)
			return
		}
		p.metrics.introspected("unauthorized")
		p.op.WriteIntrospectionError(ctx, w, fosite.ErrRequestUnauthorized.WithHint("Client authentication failed.").WithWrap(err))
		return
	}
	if caller.IsPublic() {
		p.metrics.introspected("unauthorized")
		p.op.WriteIntrospectionError(ctx, w, fosite.ErrRequestUnauthorized.WithHint("Public clients may not introspect tokens."))
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		p.op.WriteIntrospectionError(ctx, w, fosite.ErrInvalidRequest.WithHint("The token parameter is missing."))
		return
	}
	if f, ok := p.introspected.get(token); ok {
		p.answerIntrospection(ctx, w, caller, f)
		return
	}
	start := p.introspected.begin()
	use, ar, err := p.op.IntrospectToken(ctx, token, fosite.TokenUse(r.PostForm.Get("token_type_hint")), NewSession(""))
	if _, ok := asUnavailable(err); ok {
		p.logOAuthError(ctx, "introspect", err)
		writeUnavailable(w, err)
		return
	}
	if err != nil {
		p.writeInactive(w)
		return
	}
	if !p.mayIntrospect(w, caller, ar.GetClient().GetID()) {
		return
	}
	sess, _ := ar.GetSession().(*Session)
	if sess == nil {
		p.writeInactive(w)
		return
	}
	if use == fosite.AccessToken {
		f := accessFacts(ar, sess)
		f.keys.Signature = p.strategy.AccessTokenSignature(ctx, token)
		p.introspected.put(token, start, f)
		p.answerIntrospection(ctx, w, caller, f)
		return
	}
	u, ok := p.introspectedUser(ctx, w, sess.GetSubject(), sess.ClientID)
	if !ok {
		return
	}
	var exp int64
	if t := sess.GetExpiresAt(fosite.RefreshToken); !t.IsZero() {
		exp = t.Unix()
	}
	body, err := introspection{Active: true, Iss: p.cfg.Issuer, ClientID: ar.GetClient().GetID(), Sub: sess.GetSubject(),
		Scope: strings.Join(ar.GetGrantedScopes(), " "), Aud: ar.GetGrantedAudience(), Iat: ar.GetRequestedAt().Unix(),
		Exp: exp, Roles: answerRoles(u), TokenUse: string(use), TokenType: "refresh_token"}.encode()
	if err != nil {
		p.op.WriteIntrospectionError(ctx, w, fosite.ErrServerError.WithWrap(err))
		return
	}
	p.writeActive(w, body)
}

// mayIntrospect reports whether caller holds scope introspect or is the
// client the token was issued to (tokenClientID). When it may not, the
// answer is {"active":false}, byte for byte what an unknown token gets, so
// a client cannot learn which tokens exist (no oracle).
func (p *Provider) mayIntrospect(w http.ResponseWriter, caller fosite.Client, tokenClientID string) bool {
	if caller.GetScopes().Has("introspect") || caller.GetID() == tokenClientID {
		return true
	}
	p.writeInactive(w) // counted inactive, not unauthorized: /metrics is no oracle either
	return false
}

// introspectedUser reads the user behind a token for its answer: nil for a
// client's own token (subject == clientID). When it returns false the
// answer is already written: inactive for a deleted or disabled user, 503
// or server_error when the user could not be read.
func (p *Provider) introspectedUser(ctx context.Context, w http.ResponseWriter, subject, clientID string) (*accounts.Access, bool) {
	if subject == clientID {
		return nil, true
	}
	u, err := p.userAccess(ctx, subject)
	if err != nil {
		reqctx.Logger(ctx).Error("introspection: read user", zap.Error(err))
		if _, ok := asUnavailable(err); ok {
			writeUnavailable(w, err)
			return nil, false
		}
		p.op.WriteIntrospectionError(ctx, w, fosite.ErrServerError.WithWrap(err))
		return nil, false
	}
	if u == nil || u.Disabled {
		p.writeInactive(w)
		return nil, false
	}
	return u, true
}

// writeInactive writes {"active":false}: the answer for an unknown,
// expired or revoked token and for one the caller may not see alike.
func (p *Provider) writeInactive(w http.ResponseWriter) {
	p.metrics.introspected("inactive")
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_, _ = w.Write([]byte(`{"active":false}` + "\n"))
}

// introspection is the RFC 7662 answer for an active token, access or
// refresh.
type introspection struct {
	Active    bool     `json:"active"`
	Iss       string   `json:"iss"`
	ClientID  string   `json:"client_id"`
	Sub       string   `json:"sub"`
	Scope     string   `json:"scope"`
	Aud       []string `json:"aud"`
	Iat       int64    `json:"iat"`
	Exp       int64    `json:"exp,omitempty"`
	Roles     []string `json:"roles"`
	TokenUse  string   `json:"token_use"`
	TokenType string   `json:"token_type"`
}

// encode is the answer's body, newline-terminated like json.Encoder's.
func (a introspection) encode() ([]byte, error) {
	body, err := json.Marshal(a)
	return append(body, '\n'), err
}

// answerRoles is the roles an answer lists: none (an empty list, never null)
// for a client's own token.
func answerRoles(a *accounts.Access) []string {
	if a == nil {
		return []string{}
	}
	return a.Roles
}

// writeActive writes an active answer's encoded body.
func (p *Provider) writeActive(w http.ResponseWriter, body []byte) {
	p.metrics.introspected("active")
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_, _ = w.Write(body)
}

// accessFacts records what introspection learnt about an access token.
func accessFacts(ar fosite.Requester, sess *Session) *tokenFacts {
	f := &tokenFacts{
		keys: fositestore.TokenKeys{RequestID: ar.GetID(), Subject: sess.GetSubject(),
			ClientID: ar.GetClient().GetID()},
		subject: sess.GetSubject(), clientID: ar.GetClient().GetID(),
		scopes: ar.GetGrantedScopes(), audience: ar.GetGrantedAudience(),
		issuedAt: ar.GetRequestedAt().Unix(),
	}
	if exp := sess.GetExpiresAt(fosite.AccessToken); !exp.IsZero() {
		f.expiresAt = exp.Unix()
	}
	return f
}

// answerIntrospection finishes an introspection of an access token whose
// facts are known (fresh or cached): the caller must hold scope introspect
// or be the token's client, and the user behind it must still be enabled.
// The encoded answer is kept with the facts while the user's access is the
// same value.
func (p *Provider) answerIntrospection(ctx context.Context, w http.ResponseWriter, caller fosite.Client, f *tokenFacts) {
	if !p.mayIntrospect(w, caller, f.clientID) {
		return
	}
	access, ok := p.introspectedUser(ctx, w, f.subject, f.clientID)
	if !ok {
		return
	}
	a := f.answer.Load()
	if a == nil || a.access != access {
		body, err := introspection{Active: true, Iss: p.cfg.Issuer, ClientID: f.clientID, Sub: f.subject,
			Scope: strings.Join(f.scopes, " "), Aud: f.audience, Iat: f.issuedAt, Exp: f.expiresAt, Roles: answerRoles(access),
			TokenUse: string(fosite.AccessToken), TokenType: "Bearer"}.encode()
		if err != nil {
			p.op.WriteIntrospectionError(ctx, w, fosite.ErrServerError.WithWrap(err))
			return
		}
		a = &encodedAnswer{access: access, body: body}
		f.answer.Store(a)
	}
	p.writeActive(w, a.body)
}
