package oauth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ory/fosite/token/jwt"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/fositestore"
)

// OIDC Back-Channel Logout 1.0. Three parts live here:
//
//   - which relying parties took part in a browser session: linkSession
//     records each client authorized through a session (code or device
//     approval), so the session's end can be told to exactly those;
//   - who hears of a logout (BackchannelAudience, asked by accounts inside
//     the transaction that ends the sessions, whose outbox rows it fills);
//   - the logout token and its POST (BackchannelSender, called by the
//     outbox worker at each attempt, so a token is never older than one
//     attempt and retries never send an expired one).

// BackchannelLogoutEvent is the event a logout token carries (§2.4).
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// logoutTokenTTL is a logout token's lifetime: §2.4 asks for a short one,
// and each delivery attempt signs a fresh token.
const logoutTokenTTL = 2 * time.Minute

// linkSession records that clientID was authorized through the browser
// session browserSessionID.
func (p *Provider) linkSession(ctx context.Context, browserSessionID, clientID string) error {
	if browserSessionID == "" {
		return nil
	}
	_, err := p.store.Querier(ctx).Exec(ctx, `INSERT INTO oauth2_session_clients (browser_session_id, client_id)
		VALUES ($1, $2) ON CONFLICT DO NOTHING`, browserSessionID, clientID)
	if err != nil {
		return fmt.Errorf("oauth: link session to client %s: %w", clientID, err)
	}
	return nil
}

// sessionSID returns the public sid of a browser session ("" when it is
// gone), for tokens minted after the session was looked up (device grant).
func (p *Provider) sessionSID(ctx context.Context, browserSessionID string) (string, error) {
	if browserSessionID == "" {
		return "", nil
	}
	var sid string
	err := p.store.Querier(ctx).QueryRow(ctx, `SELECT sid FROM browser_sessions WHERE id = $1`, browserSessionID).Scan(&sid)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return sid, err
}

// setSID puts the session id into the ID token (OIDC Front- and Back-Channel
// Logout "sid"); refreshes keep it, as they keep every ID-token claim.
func setSID(sess *Session, sid string) {
	if sid != "" {
		sess.Claims.Extra["sid"] = sid
	}
}

// BackchannelAudience is accounts.LogoutAudience: it decides which relying
// parties are told of a logout. Only clients with a backchannel_logout_uri
// are told anything.
//
//   - Sessions ended (logout, a session ended on /account or by an admin,
//     other sessions ended by a password change): one notice per session
//     and client linked to it, naming the user and the session (sub, sid).
//   - The account logged out (password reset, disabled, deleted): one
//     notice per client the user has a session link, remembered consent or
//     a live token with, naming only the user (every session at that
//     client ends); a client that requires sid instead gets one notice per
//     session of the user it is linked to.
type BackchannelAudience struct{}

var _ accounts.LogoutAudience = BackchannelAudience{}

// LogoutNotices implements accounts.LogoutAudience.
func (BackchannelAudience) LogoutNotices(ctx context.Context, q storage.Querier, userID string, sessionIDs []string, wholeUser bool) ([]accounts.LogoutNotice, error) {
	if sessionIDs == nil {
		sessionIDs = []string{}
	}
	var rows pgx.Rows
	var err error
	if !wholeUser {
		rows, err = q.Query(ctx, `SELECT l.client_id, s.sid FROM oauth2_session_clients l
			JOIN browser_sessions s ON s.id = l.browser_session_id
			JOIN oauth2_clients c ON c.id = l.client_id
			WHERE s.user_id = $1::uuid AND l.browser_session_id = ANY($2::uuid[]) AND c.backchannel_logout_uri <> ''
			ORDER BY 1, 2`, userID, sessionIDs)
	} else {
		rows, err = q.Query(ctx, `WITH rp AS (
				SELECT c.id, c.backchannel_logout_session_required AS need_sid FROM oauth2_clients c
				WHERE c.backchannel_logout_uri <> '' AND (
					EXISTS (SELECT 1 FROM oauth2_session_clients l JOIN browser_sessions s ON s.id = l.browser_session_id
						WHERE s.user_id = $1::uuid AND l.client_id = c.id)
					OR EXISTS (SELECT 1 FROM oauth2_consents k WHERE k.user_id = $1::uuid AND k.client_id = c.id)
					OR EXISTS (SELECT 1 FROM oauth2_refresh t WHERE t.subject = $3 AND t.client_id = c.id AND t.active)
					OR EXISTS (SELECT 1 FROM oauth2_access t WHERE t.subject = $3 AND t.client_id = c.id AND t.expires_at > now())))
			SELECT rp.id, '' FROM rp WHERE NOT rp.need_sid
			UNION ALL
			SELECT rp.id, s.sid FROM rp JOIN oauth2_session_clients l ON l.client_id = rp.id
				JOIN browser_sessions s ON s.id = l.browser_session_id
				WHERE rp.need_sid AND s.user_id = $1::uuid AND l.browser_session_id = ANY($2::uuid[])
			ORDER BY 1, 2`, userID, sessionIDs, userID)
	}
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (accounts.LogoutNotice, error) {
		var n accounts.LogoutNotice
		err := row.Scan(&n.ClientID, &n.SID)
		return n, err
	})
}

// BackchannelSender is accounts.LogoutSender: it signs a logout token with
// the current ID-token key (the client's registered alg) and POSTs it.
type BackchannelSender struct {
	p      *Provider
	client *http.Client
}

var _ accounts.LogoutSender = (*BackchannelSender)(nil)

// BackchannelSender returns the provider's logout-token sender. hc may be
// nil: a client with a 10s timeout that never follows redirects (a relying
// party answers the POST itself, §2.8).
func (p *Provider) BackchannelSender(hc *http.Client) *BackchannelSender {
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &BackchannelSender{p: p, client: hc}
}

// SendLogout implements accounts.LogoutSender.
func (b *BackchannelSender) SendLogout(ctx context.Context, d accounts.LogoutDelivery) error {
	c, err := b.p.store.Client(ctx, d.ClientID)
	if errors.Is(err, fositestore.ErrNotFound) {
		return nil // the client is gone, and its tokens with it
	}
	if err != nil {
		return err
	}
	if c.BackchannelLogoutURI == "" || (c.BackchannelLogoutSessionRequired && d.SID == "") {
		return nil // unregistered since: nothing to tell
	}
	token, err := b.p.LogoutToken(ctx, c, d.Subject, d.SID)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BackchannelLogoutURI,
		strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "authd-backchannel-logout/1")
	resp, err := b.client.Do(req)
	if err != nil {
		return fmt.Errorf("back-channel logout to %s: %w", d.ClientID, err)
	}
	defer resp.Body.Close()
	// Drain a little so the connection can be reused; the body itself is
	// never kept: the error lands in the admin API, and an answer read back
	// from an arbitrary URL would make authd a way to read internal pages.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("back-channel logout to %s: the relying party answered %s", d.ClientID, resp.Status)
	}
	return nil
}

// LogoutToken signs a logout token for client c (§2.4): iss, aud, iat, exp,
// a fresh jti, sub and/or sid, the back-channel logout event, never a nonce;
// header typ logout+jwt (§2.4.2), signed like the client's ID tokens.
func (p *Provider) LogoutToken(ctx context.Context, c *fositestore.Client, subject, sid string) (string, error) {
	if subject == "" && sid == "" {
		return "", errors.New("oauth: a logout token names a subject, a session or both")
	}
	now := p.cfg.Now()
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	claims := jwt.MapClaims{
		"iss":    p.cfg.Issuer,
		"aud":    c.ID,
		"iat":    now.Unix(),
		"exp":    now.Add(logoutTokenTTL).Unix(),
		"jti":    hex.EncodeToString(jti),
		"events": map[string]any{BackchannelLogoutEvent: map[string]any{}},
	}
	if subject != "" {
		claims["sub"] = subject
	}
	if sid != "" {
		claims["sid"] = sid
	}
	hdr := &jwt.Headers{Extra: map[string]interface{}{"typ": "logout+jwt"}}
	if c.IDTokenSignedResponseAlg != "" {
		hdr.Extra[headerAlg] = c.IDTokenSignedResponseAlg
	}
	token, _, err := p.idSigner.Generate(ctx, claims, hdr)
	return token, err
}
