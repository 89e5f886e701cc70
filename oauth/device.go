package oauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/ratelimit"
	"github.com/authd/authd/internal/reqctx"
	loginui "github.com/authd/authd/login-ui"
	"github.com/authd/authd/oauth/clients"
	"github.com/authd/authd/storage/fositestore"
)

// DeviceGrantType is the grant type of the device authorization grant
// (RFC 8628 §3.4); clients must be registered with it.
const DeviceGrantType = clients.DeviceGrantType

// userCodeAlphabet has no vowels (no words) and no look-alikes (RFC 8628
// §6.1): 20^8 ≈ 2^34.6 codes, guessed under a per-address limit and only
// while one is pending.
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// The device grant's polling answers (RFC 8628 §3.5).
var (
	errAuthorizationPending = &fosite.RFC6749Error{ErrorField: "authorization_pending", CodeField: http.StatusBadRequest,
		DescriptionField: "The user has not yet approved or denied the request."}
	errSlowDown = &fosite.RFC6749Error{ErrorField: "slow_down", CodeField: http.StatusBadRequest,
		DescriptionField: "Polling too fast: wait the interval, now 5 seconds longer, between requests."}
	errExpiredToken = &fosite.RFC6749Error{ErrorField: "expired_token", CodeField: http.StatusBadRequest,
		DescriptionField: "The device code has expired; start again."}
)

// deviceAuthorize is POST /oauth2/device/auth (RFC 8628 §3.1): a client
// registered for the device grant, authenticated as at the token endpoint
// (public clients by client_id), gets a device code to poll with and a user
// code for the user to enter at /device.
func (p *Provider) deviceAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	w.Header().Set("Cache-Control", "no-store")
	fc, err := p.fosite().AuthenticateClient(ctx, r, r.PostForm)
	if err != nil {
		p.deviceError(ctx, w, fosite.ErrInvalidClient.WithHint("The client could not be authenticated.").WithWrap(err))
		return
	}
	client, ok := fc.(*fositestore.Client)
	if !ok || !slices.Contains(client.GrantTypes, DeviceGrantType) {
		p.deviceError(ctx, w, fosite.ErrUnauthorizedClient.WithHint("The client is not registered for the device authorization grant."))
		return
	}
	scopes := strings.Fields(r.PostForm.Get("scope"))
	for _, s := range scopes {
		if !fosite.ExactScopeStrategy(client.GetScopes(), s) {
			p.deviceError(ctx, w, fosite.ErrInvalidScope.WithHintf("The client may not request scope '%s'.", s))
			return
		}
	}
	now := p.store.Now()
	d := &fositestore.DeviceAuth{RequestID: randomToken(), ClientID: client.ID, Scopes: scopes,
		CreatedAt: now, ExpiresAt: now.Add(p.cfg.DeviceCodeTTL), Interval: p.cfg.DevicePollInterval}
	deviceCode := randomToken()
	var userCode string
	for range 3 { // a collision with a live code is rare; draw again
		userCode = newUserCode()
		if err = p.store.CreateDeviceAuth(ctx, deviceCode, userCode, d); !errors.Is(err, fositestore.ErrUserCodeTaken) {
			break
		}
	}
	if err != nil {
		p.deviceError(ctx, w, fosite.ErrServerError.WithWrap(err))
		return
	}
	shown := userCode[:4] + "-" + userCode[4:]
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"device_code":               deviceCode,
		"user_code":                 shown,
		"verification_uri":          p.cfg.Issuer + "/device",
		"verification_uri_complete": p.cfg.Issuer + "/device?" + url.Values{"user_code": {shown}}.Encode(),
		"expires_in":                int(p.cfg.DeviceCodeTTL.Seconds()),
		"interval":                  int(p.cfg.DevicePollInterval.Seconds()),
	})
}

func (p *Provider) deviceError(ctx context.Context, w http.ResponseWriter, err error) {
	if e, down := asUnavailable(err); down {
		err = e
		w.Header().Set("Retry-After", "1")
	}
	p.logOAuthError(ctx, "device authorization", err)
	p.op.WriteAccessError(ctx, w, fosite.NewAccessRequest(NewSession("")), err)
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func newUserCode() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	for i := range b {
		// 256 % 20 != 0 biases the first 16 letters by 1/256: harmless here.
		b[i] = userCodeAlphabet[int(b[i])%len(userCodeAlphabet)]
	}
	return string(b)
}

// normalizeUserCode uppercases a typed code and drops separators; ok is
// false when what is left cannot be a user code.
func normalizeUserCode(s string) (string, bool) {
	var b strings.Builder
	for _, c := range strings.ToUpper(s) {
		switch {
		case c == '-' || c == ' ':
		case strings.ContainsRune(userCodeAlphabet, c):
			b.WriteRune(c)
		default:
			return "", false
		}
	}
	return b.String(), b.Len() == 8
}

// deviceToken is the token endpoint for grant_type DeviceGrantType. The
// poll and, once approved, the token issuance share one transaction holding
// the device row's lock, so however many polls race, one gets the tokens.
func (p *Provider) deviceToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	fc, err := p.fosite().AuthenticateClient(ctx, r, r.PostForm)
	if err != nil {
		p.tokenError(ctx, w, nil, DeviceGrantType, fosite.ErrInvalidClient.WithHint("The client could not be authenticated.").WithWrap(err))
		return
	}
	client, ok := fc.(*fositestore.Client)
	if !ok || !slices.Contains(client.GrantTypes, DeviceGrantType) {
		p.tokenError(ctx, w, nil, DeviceGrantType, fosite.ErrUnauthorizedClient.WithHint("The client is not registered for the device authorization grant."))
		return
	}
	deviceCode := r.PostForm.Get("device_code")
	if deviceCode == "" {
		p.tokenError(ctx, w, nil, DeviceGrantType, fosite.ErrInvalidRequest.WithHint("device_code is required."))
		return
	}
	var (
		ar      *fosite.AccessRequest
		resp    fosite.AccessResponder
		pollErr error
	)
	err = p.store.InTxWith(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(ctx context.Context) error {
		d, slow, err := p.store.PollDevice(ctx, deviceCode, client.ID)
		switch {
		case errors.Is(err, fositestore.ErrNotFound):
			pollErr = fosite.ErrInvalidGrant.WithHint("Unknown device_code, or issued to another client.")
			return nil
		case err != nil:
			return err
		case d.Expired:
			pollErr = errExpiredToken
			return nil
		case d.Status == fositestore.DeviceIssued:
			pollErr = fosite.ErrInvalidGrant.WithHint("The device_code has already been used.")
			return nil
		case slow:
			pollErr = errSlowDown
			return nil
		case d.Status == fositestore.DevicePending:
			pollErr = errAuthorizationPending
			return nil
		case d.Status == fositestore.DeviceDenied:
			pollErr = fosite.ErrAccessDenied.WithHint("The user denied the request.")
			return nil
		}
		u, err := p.accts.User(ctx, d.Subject)
		if errors.Is(err, accounts.ErrNotFound) || (err == nil && u.Disabled) {
			pollErr = fosite.ErrAccessDenied.WithHint("The user can no longer sign in.")
			return nil
		}
		if err != nil {
			return err
		}
		sid, err := p.sessionSID(ctx, d.BrowserSess)
		if err != nil {
			return err
		}
		ar = p.deviceAccessRequest(client, d, u)
		setSID(ar.GetSession().(*Session), sid)
		resp, err = p.op.NewAccessResponse(ctx, ar)
		if err != nil {
			return err
		}
		return p.addDeviceIDToken(ctx, ar, resp)
	})
	if err == nil {
		err = pollErr
	}
	if err != nil {
		p.tokenError(ctx, w, nil, DeviceGrantType, err) // ar may be a typed nil
		return
	}
	p.metrics.tokenIssued(DeviceGrantType, client.ID)
	reqctx.Logger(ctx).Info("token issued", zap.String("grant_type", "device_code"),
		zap.String("client_id", client.ID), zap.String("subject", ar.GetSession().GetSubject()))
	w.Header().Set("Cache-Control", "no-store")
	p.op.WriteAccessResponse(ctx, w, ar, resp)
}

// deviceAccessRequest is the approved authorization as a request fosite can
// answer. Its grant type is password: fosite's password handler is the one
// that issues an access token and (with offline_access) a refresh token for
// a request already authorized, as IssuePasswordGrant relies on too.
func (p *Provider) deviceAccessRequest(client *fositestore.Client, d *fositestore.DeviceAuth, u *accounts.User) *fosite.AccessRequest {
	sess := NewSession(u.ID)
	sess.ClientID = client.ID
	sess.BrowserSessionID = d.BrowserSess
	if d.AuthTime != nil {
		sess.Claims.AuthTime = d.AuthTime.UTC()
	}
	now := p.cfg.Now().UTC()
	sess.Claims.RequestedAt = now
	amr := d.AMR
	if len(amr) == 0 {
		amr = []string{accounts.AMRPassword}
	}
	sess.setAuthentication(amr)
	if client.IDTokenSignedResponseAlg != "" {
		sess.Headers.Extra[headerAlg] = client.IDTokenSignedResponseAlg
	}
	ar := fosite.NewAccessRequest(sess)
	ar.ID = d.RequestID
	ar.Client = client
	ar.GrantTypes = fosite.Arguments{"password"}
	ar.Form = url.Values{}
	for _, s := range d.Scopes {
		ar.AppendRequestedScope(s)
		ar.GrantScope(s)
	}
	grantAudience(ar, p.cfg.Issuer)
	addIDTokenClaims(sess, ar.GetGrantedScopes(), u)
	sess.setRoles(u.Roles, idTokenHasRoles(ar.GetGrantedScopes()))
	sess.SetExpiresAt(fosite.AccessToken, now.Add(p.cfg.AccessTokenTTL).Round(time.Second))
	sess.SetExpiresAt(fosite.RefreshToken, now.Add(p.cfg.RefreshTokenTTL).Round(time.Second))
	return ar
}

// addDeviceIDToken adds an ID token when openid was granted, as the code
// flow's token response has.
func (p *Provider) addDeviceIDToken(ctx context.Context, ar *fosite.AccessRequest, resp fosite.AccessResponder) error {
	if !ar.GetGrantedScopes().Has("openid") {
		return nil
	}
	tok, err := (&openid.DefaultStrategy{Signer: p.idSigner, Config: p.fcfg}).GenerateIDToken(ctx, p.cfg.IDTokenTTL, ar)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	resp.SetExtra("id_token", tok)
	return nil
}

// devicePage is GET|POST /device, the page where a logged-in user enters
// the code shown on a device, sees which app asks for what, and approves or
// denies. GET only shows the form; lookups and decisions are CSRF-checked
// POSTs, and failed lookups count against the address (guessing).
func (p *Provider) devicePage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil || !p.ui.CheckCSRF(r) {
			p.ui.Render(w, r, http.StatusForbidden, "message", loginui.Page{Title: "Request expired",
				Error: "This form has expired or was not sent by this site. Go back and try again."})
			return
		}
	}
	typed := r.FormValue("user_code")
	bsess, user, err := p.accts.SessionByToken(ctx, p.ui.SessionToken(r))
	if errors.Is(err, accounts.ErrNoSession) {
		back := "/device"
		if code, ok := normalizeUserCode(typed); ok {
			back += "?" + url.Values{"user_code": {code[:4] + "-" + code[4:]}}.Encode()
		}
		http.Redirect(w, r, "/login?return_to="+url.QueryEscape(back), http.StatusSeeOther)
		return
	}
	if err != nil {
		p.ui.RenderFailure(w, r, false, "device: approval", err)
		return
	}
	page := loginui.Page{Title: "Connect a device", LoggedIn: true}
	data := loginui.DeviceData{UserCode: typed}
	if r.Method != http.MethodPost {
		page.Data = data
		p.ui.Render(w, r, http.StatusOK, "device", page)
		return
	}
	ip := ratelimit.ClientIP(r)
	if blocked, wait := p.cfg.DeviceCodeLimit.Blocked(ip); blocked {
		w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
		page.Error, page.Data = "Too many wrong codes from your network. Please wait a moment and try again.", data
		p.ui.Render(w, r, http.StatusTooManyRequests, "device", page)
		return
	}
	// badCode answers a code that is unknown, expired or already decided.
	badCode := func() {
		page.Error, page.Data = "That code is not valid or has expired. Check the code on your device.", data
		p.ui.Render(w, r, http.StatusBadRequest, "device", page)
	}
	code, ok := normalizeUserCode(typed)
	var d *fositestore.DeviceAuth
	if ok {
		d, err = p.store.PendingDeviceByUserCode(ctx, code)
	}
	if !ok || errors.Is(err, fositestore.ErrNotFound) {
		p.cfg.DeviceCodeLimit.Allow(ip)
		badCode()
		return
	}
	if err != nil {
		p.ui.RenderFailure(w, r, false, "device: approval", err)
		return
	}
	shown := code[:4] + "-" + code[4:]
	if !p.deviceAuthenticationOK(w, r, d, bsess, user, shown) {
		return
	}
	switch r.PostFormValue("decision") {
	case "allow", "deny":
		allow := r.PostFormValue("decision") == "allow"
		if allow {
			if err := p.linkSession(ctx, bsess.ID, d.ClientID); err != nil {
				p.ui.RenderFailure(w, r, false, "device: approval", err)
				return
			}
		}
		err := p.store.DecideDevice(ctx, code, allow, user.ID, bsess.ID, bsess.AuthTime, sessionAMR(bsess))
		if errors.Is(err, fositestore.ErrDeviceNotPending) {
			badCode()
			return
		}
		if err != nil {
			p.ui.RenderFailure(w, r, false, "device: approval", err)
			return
		}
		reqctx.Logger(ctx).Info("device authorization decided", zap.String("client_id", d.ClientID),
			zap.String("user_id", user.ID), zap.Bool("approved", allow))
		msg := "Access denied. You can close this page."
		if allow {
			msg = "Your device is connected. You can return to it now."
		}
		p.ui.Render(w, r, http.StatusOK, "message", loginui.Page{Title: "Done", LoggedIn: true, Data: msg})
	default:
		c, err := p.store.Client(ctx, d.ClientID)
		if err != nil {
			p.ui.RenderFailure(w, r, false, "device: approval", err)
			return
		}
		consent := loginui.NewConsentData(c.Name, c.ID, user.Email, d.Scopes, orAPIAudience(d.Audience, p.cfg.APIAudience), "")
		data.UserCode, data.Consent = shown, &consent
		page.Title, page.Data = "Allow this device?", data
		p.ui.Render(w, r, http.StatusOK, "device", page)
	}
}

// orAPIAudience is aud, or authd's own API audience when none was asked for
// (what grantAudience grants), as consent shows it.
func orAPIAudience(aud []string, api string) []string {
	if len(aud) > 0 {
		return aud
	}
	return []string{api}
}

// deviceAuthenticationOK holds a device approval to what a code would be
// held to (checkAuthentication: the client's require_mfa and the user's
// role policy). A session without the second factor logs in again, which
// asks for the factor the user holds; a user who holds none is sent to set
// one up. It returns false once it has answered.
func (p *Provider) deviceAuthenticationOK(w http.ResponseWriter, r *http.Request, d *fositestore.DeviceAuth,
	bsess *accounts.Session, user *accounts.User, shown string) bool {
	ctx := r.Context()
	c, err := p.store.Client(ctx, d.ClientID)
	if err == nil {
		err = p.checkAuthentication(ctx, c, url.Values{}, bsess, user)
	}
	if err == nil {
		return true
	}
	if !errors.Is(err, errStepUp) {
		p.ui.RenderFailure(w, r, false, "device: approval", err)
		return false
	}
	methods, err := p.accts.Factors(ctx, user.ID)
	if err != nil {
		p.ui.RenderFailure(w, r, false, "device: approval", err)
		return false
	}
	if !accounts.HasSecondFactor(methods) {
		p.ui.Render(w, r, http.StatusForbidden, "message", loginui.Page{Title: "Two-step sign-in needed", LoggedIn: true,
			Error: "The app asking for this device requires two-step sign-in. Set it up on your account page, then enter the code again."})
		return false
	}
	p.metrics.authorize.WithLabelValues("step_up").Inc()
	back := "/device?" + url.Values{"user_code": {shown}}.Encode()
	http.Redirect(w, r, "/login?return_to="+url.QueryEscape(back), http.StatusSeeOther)
	return false
}
