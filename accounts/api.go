package accounts

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/authd/authd/internal/authn"
	"github.com/authd/authd/internal/problem"
	"github.com/authd/authd/internal/ratelimit"
)

// PasswordGrantIssuer lets POST /api/v1/register answer a first-party
// client's registration with a token response, as the password grant would.
// The oauth package implements it; accounts never imports oauth.
type PasswordGrantIssuer interface {
	// AuthenticateFirstPartyClient checks client credentials and that the
	// client is flagged first-party. Any error means 401 and no user is made.
	AuthenticateFirstPartyClient(ctx context.Context, clientID, clientSecret string) error
	// IssuePasswordGrant issues tokens for user to clientID with the requested
	// scope (space-separated, may be empty) and writes the OAuth token response.
	IssuePasswordGrant(ctx context.Context, w http.ResponseWriter, r *http.Request, clientID string, user *User, scope string)
}

// Limits are the per-IP rate limits of the account endpoints. Nil fields do
// not limit. The same limiters may be shared with the hosted pages.
type Limits struct {
	Register      *ratelimit.Limiter
	Forgot        *ratelimit.Limiter
	Verify        *ratelimit.Limiter // verification and resend
	Login         *ratelimit.Limiter // for the /login page (owned by the OAuth side)
	PasswordGrant *ratelimit.Limiter // for grant_type=password at /oauth2/token
	// EmailChange bounds email changes started per client address (the
	// per-user bound is Config.EmailChanges, kept in Postgres).
	EmailChange *ratelimit.Limiter
}

// DefaultLimits returns limits generous for people and tight for scripts.
func DefaultLimits() Limits {
	return Limits{
		Register:      ratelimit.New(ratelimit.Config{Every: 30 * time.Second, Burst: 10}),
		Forgot:        ratelimit.New(ratelimit.Config{Every: 30 * time.Second, Burst: 5}),
		Verify:        ratelimit.New(ratelimit.Config{Every: 10 * time.Second, Burst: 10}),
		Login:         ratelimit.New(ratelimit.Config{Every: 2 * time.Second, Burst: 20}),
		PasswordGrant: ratelimit.New(ratelimit.Config{Every: 2 * time.Second, Burst: 20}),
		EmailChange:   ratelimit.New(ratelimit.Config{Every: 10 * time.Minute, Burst: 5}),
	}
}

// HandlerConfig configures the JSON API handler.
type HandlerConfig struct {
	Limits Limits
	// PasswordGrant, when set, serves registrations carrying client
	// credentials; without it such requests get 400.
	PasswordGrant PasswordGrantIssuer
}

// Handler serves the accounts JSON APIs under /api/v1.
type Handler struct {
	svc *Service
	log *zap.Logger
	cfg HandlerConfig
}

// NewHandler returns the API handler.
func NewHandler(svc *Service, log *zap.Logger, cfg HandlerConfig) *Handler {
	if log == nil {
		log = zap.NewNop()
	}
	return &Handler{svc: svc, log: log, cfg: cfg}
}

func limited(l *ratelimit.Limiter, h http.HandlerFunc) http.Handler {
	if l == nil {
		return h
	}
	return l.Middleware(h)
}

// MountPublicAPI mounts the unauthenticated routes on the /api/v1 subrouter:
// POST /register, /password/forgot, /password/reset, /email/verify.
func (h *Handler) MountPublicAPI(api *authn.Router) {
	l := h.cfg.Limits
	public := authn.Policy{Public: true}
	api.Handle(http.MethodPost, "/register", public, limited(l.Register, h.register))
	api.Handle(http.MethodPost, "/password/forgot", public, limited(l.Forgot, h.forgot))
	api.Handle(http.MethodPost, "/password/reset", public, limited(l.Forgot, h.reset))
	api.Handle(http.MethodPost, "/email/verify", public, limited(l.Verify, h.verify))
}

// Scopes of the account API. Reading the profile needs profile (or
// account); changing the account or seeing its sessions needs account,
// which only first-party clients can be granted: a third-party app that
// logged the user in must not be able to change their email or end their
// sessions.
const (
	ScopeProfile = "profile"
	ScopeAccount = "account"
)

// MountUserAPI mounts the routes for the bearer token's user on the /api/v1
// router: GET|PATCH /me, POST /me/password, POST /me/email/verify (resend),
// GET /me/sessions, DELETE /me/sessions/{id}.
func (h *Handler) MountUserAPI(api *authn.Router) {
	read := authn.Policy{Callers: authn.User, Scopes: []string{ScopeProfile, ScopeAccount}}
	manage := authn.Policy{Callers: authn.User, Scopes: []string{ScopeAccount}, FirstParty: true}
	api.HandleFunc(http.MethodGet, "/me", read, h.me)
	api.HandleFunc(http.MethodPatch, "/me", manage, h.patchMe)
	api.HandleFunc(http.MethodPost, "/me/password", manage, h.changePassword)
	api.Handle(http.MethodPost, "/me/email/verify", manage, limited(h.cfg.Limits.Verify, h.resend))
	api.HandleFunc(http.MethodGet, "/me/sessions", manage, h.sessions)
	api.HandleFunc(http.MethodDelete, "/me/sessions/{id}", manage, h.endSession)
}

// ProblemFor translates an accounts error into its API problem; errors it
// does not know pass through (and become a logged 500).
func ProblemFor(err error) error {
	var pol *PolicyError
	var thr *ThrottledError
	var soon *TooSoonError
	switch {
	case errors.As(err, &pol):
		return problem.Invalid(pol.Field, pol.Field+" "+pol.Reason)
	case errors.As(err, &thr):
		return tooMany("too many failed attempts", thr.RetryAfter, err)
	case errors.As(err, &soon):
		return tooMany("too many requests of this kind", soon.RetryAfter, err)
	}
	if pe, ok := wireErrors.Find(err); ok {
		return pe
	}
	if isNotFound(err) {
		return problem.ErrNotFound
	}
	return err
}

func tooMany(detail string, wait time.Duration, err error) *problem.Error {
	pe := ratelimit.Problem(detail, wait, err)
	pe.Extra = map[string]any{"retry_after": ratelimit.RetryAfter(wait)}
	return pe
}

// writeErr renders err, adding Retry-After to 429s.
func writeErr(w http.ResponseWriter, r *http.Request, err error) {
	err = ProblemFor(err)
	var pe *problem.Error
	if errors.As(err, &pe) && pe.Status == http.StatusTooManyRequests {
		if v, ok := pe.Extra["retry_after"].(string); ok {
			w.Header().Set("Retry-After", v)
		}
	}
	problem.Write(w, r, err)
}

type registerRequest struct {
	Email        string `json:"email"`
	Password     string `json:"password"`
	Name         string `json:"name"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	Scope        string `json:"scope"`
}

func (h *Handler) register(w http.ResponseWriter, r *http.Request) {
	var req registerRequest
	if err := problem.DecodeJSON(w, r, &req); err != nil {
		problem.Write(w, r, err)
		return
	}
	clientID, secret, hasClient := clientCredentials(r, req)
	if hasClient {
		if h.cfg.PasswordGrant == nil {
			problem.Write(w, r, wireErrors.Map(errClientRegistrationOff))
			return
		}
		if err := h.cfg.PasswordGrant.AuthenticateFirstPartyClient(r.Context(), clientID, secret); err != nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="authd"`)
			problem.Write(w, r, wireErrors.Map(fmt.Errorf("%w: %w", errClientAuthentication, err)))
			return
		}
	}
	u, err := h.svc.Register(r.Context(), Registration{Email: req.Email, Password: req.Password, Name: req.Name})
	if err != nil {
		writeErr(w, r, err)
		return
	}
	if hasClient {
		h.cfg.PasswordGrant.IssuePasswordGrant(r.Context(), w, r, clientID, u, req.Scope)
		return
	}
	w.Header().Set("Location", "/api/v1/me")
	problem.WriteJSON(w, http.StatusCreated, u)
}

// clientCredentials reads client_secret_basic (RFC 6749 §2.3.1: form-encoded
// id and secret) or the body's client_id/client_secret.
func clientCredentials(r *http.Request, req registerRequest) (id, secret string, ok bool) {
	if scheme, v, found := strings.Cut(r.Header.Get("Authorization"), " "); found && strings.EqualFold(scheme, "Basic") {
		if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v)); err == nil {
			if u, p, found := strings.Cut(string(b), ":"); found {
				uu, err1 := url.QueryUnescape(u)
				pp, err2 := url.QueryUnescape(p)
				if err1 == nil && err2 == nil {
					return uu, pp, true
				}
			}
		}
		return "", "", true // malformed Basic credentials still mean "a client is asking"
	}
	if req.ClientID != "" {
		return req.ClientID, req.ClientSecret, true
	}
	return "", "", false
}

// ForgotResponse is the one answer of POST /api/v1/password/forgot,
// whether or not the account exists.
type ForgotResponse struct {
	Status string `json:"status"`
	Detail string `json:"detail"`
}

func (h *Handler) forgot(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email string `json:"email"`
	}
	if err := problem.DecodeJSON(w, r, &req); err != nil {
		problem.Write(w, r, err)
		return
	}
	if _, err := NormalizeEmail(req.Email); err != nil {
		problem.Write(w, r, problem.Invalid("email", "email must be a valid email address"))
		return
	}
	if err := h.svc.ForgotPassword(r.Context(), req.Email); err != nil {
		writeErr(w, r, err)
		return
	}
	problem.WriteJSON(w, http.StatusAccepted, ForgotResponse{Status: "accepted", Detail: "if an account with this email exists, a reset link has been sent"})
}

func (h *Handler) reset(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token    string `json:"token"`
		Password string `json:"password"`
	}
	if err := problem.DecodeJSON(w, r, &req); err != nil {
		problem.Write(w, r, err)
		return
	}
	u, err := h.svc.ResetPassword(r.Context(), req.Token, req.Password)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	problem.WriteJSON(w, http.StatusOK, u)
}

func (h *Handler) verify(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token string `json:"token"`
		// Password proves the account when the link confirms an email
		// change; a plain verification needs none.
		Password string `json:"password"`
	}
	if err := problem.DecodeJSON(w, r, &req); err != nil {
		problem.Write(w, r, err)
		return
	}
	u, err := h.svc.VerifyEmail(r.Context(), req.Token, Proof{Password: req.Password})
	if err != nil {
		writeErr(w, r, err)
		return
	}
	problem.WriteJSON(w, http.StatusOK, u)
}
