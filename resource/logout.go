package resource

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// BackchannelLogoutEvent is the member of a logout token's events claim
// (OIDC Back-Channel Logout 1.0 §2.4).
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// ErrReplayedLogoutToken is wrapped (with ErrInvalidToken) when a logout
// token's jti was already accepted.
var ErrReplayedLogoutToken = errors.New("resource: logout token replayed")

// LogoutClaims are a verified logout token's claims. Subject, SessionID or
// both are set: with SessionID, end that session; with only Subject, end
// every session of that user.
type LogoutClaims struct {
	Issuer    string
	Subject   string
	SessionID string
	TokenID   string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// LogoutVerifier checks logout tokens for an app that registered a
// backchannel_logout_uri (its client id is Config.Audience): signature
// against authd's JWKS, typ logout+jwt, iss, aud, iat, exp, the
// back-channel logout event, no nonce, sub or sid, and jti seen once.
// Create it with NewLogoutVerifier; it is safe for concurrent use.
type LogoutVerifier struct {
	cfg  Config
	algs []jose.SignatureAlgorithm
	keys *keyCache

	mu   sync.Mutex
	seen map[string]time.Time // jti → when it may be forgotten
}

// NewLogoutVerifier returns a verifier for the app whose client id is
// cfg.Audience. ID-token algorithms (RS256, ES256) are accepted by default.
func NewLogoutVerifier(cfg Config) (*LogoutVerifier, error) {
	if cfg.Introspection != nil {
		return nil, errors.New("resource: logout tokens are not introspected; leave Introspection unset")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	v := &LogoutVerifier{cfg: cfg, keys: newKeyCache(cfg), seen: map[string]time.Time{}}
	for _, a := range cfg.Algorithms {
		v.algs = append(v.algs, jose.SignatureAlgorithm(a))
	}
	return v, nil
}

type logoutWire struct {
	Issuer   string                     `json:"iss"`
	Subject  string                     `json:"sub"`
	SID      string                     `json:"sid"`
	Audience jwt.Audience               `json:"aud"`
	Expiry   *jwt.NumericDate           `json:"exp"`
	IssuedAt *jwt.NumericDate           `json:"iat"`
	ID       string                     `json:"jti"`
	Events   map[string]json.RawMessage `json:"events"`
}

// Verify checks a logout token (§2.6) and returns its claims. Failures that
// are the token's fault wrap ErrInvalidToken (a replay also wraps
// ErrReplayedLogoutToken); failing to fetch authd's keys wraps ErrUnavailable.
func (v *LogoutVerifier) Verify(ctx context.Context, token string) (*LogoutClaims, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: logout token: "+format, append([]any{ErrInvalidToken}, args...)...)
	}
	jws, err := jose.ParseSignedCompact(token, v.algs)
	if err != nil {
		return nil, invalid("%v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, invalid("want one signature")
	}
	h := jws.Signatures[0].Protected
	// §2.4.2: typ keeps ID tokens and access tokens from passing as logout tokens.
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if !strings.EqualFold(typ, "logout+jwt") && !strings.EqualFold(typ, "application/logout+jwt") {
		return nil, invalid("typ %q, want logout+jwt", typ)
	}
	key, err := v.keys.key(ctx, h.KeyID)
	if err != nil {
		return nil, err
	}
	if key.Algorithm != "" && key.Algorithm != h.Algorithm {
		return nil, invalid("alg %s does not match key %q (%s)", h.Algorithm, h.KeyID, key.Algorithm)
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return nil, invalid("%v", err)
	}
	var w logoutWire
	if err := json.Unmarshal(payload, &w); err != nil {
		return nil, invalid("claims: %v", err)
	}
	var raw map[string]json.RawMessage
	if err := json.NewDecoder(bytes.NewReader(payload)).Decode(&raw); err != nil {
		return nil, invalid("claims: %v", err)
	}
	now, leeway := v.cfg.Now(), v.cfg.Leeway
	ev, hasEvent := w.Events[BackchannelLogoutEvent]
	switch {
	case w.Issuer != v.cfg.Issuer:
		return nil, invalid("issuer %q", w.Issuer)
	case !slices.Contains([]string(w.Audience), v.cfg.Audience):
		return nil, invalid("audience %q does not include %q", []string(w.Audience), v.cfg.Audience)
	case w.IssuedAt == nil:
		return nil, invalid("no iat")
	case now.Add(leeway).Before(w.IssuedAt.Time()):
		return nil, invalid("issued in the future")
	case w.Expiry == nil:
		return nil, invalid("no exp")
	case !now.Before(w.Expiry.Time().Add(leeway)):
		return nil, invalid("expired")
	case w.ID == "":
		return nil, invalid("no jti")
	case !hasEvent || !bytes.HasPrefix(bytes.TrimSpace(ev), []byte("{")):
		return nil, invalid("no back-channel logout event")
	case raw["nonce"] != nil:
		return nil, invalid("a nonce is forbidden")
	case w.Subject == "" && w.SID == "":
		return nil, invalid("neither sub nor sid")
	}
	if !v.firstUse(w.ID, w.Expiry.Time().Add(leeway), now) {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, ErrReplayedLogoutToken)
	}
	return &LogoutClaims{Issuer: w.Issuer, Subject: w.Subject, SessionID: w.SID, TokenID: w.ID,
		IssuedAt: w.IssuedAt.Time(), ExpiresAt: w.Expiry.Time()}, nil
}

// firstUse records jti until forget and reports whether it was new. A jti
// can be forgotten once its token expired: the token is refused anyway.
func (v *LogoutVerifier) firstUse(jti string, forget, now time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for k, t := range v.seen {
		if now.After(t) {
			delete(v.seen, k)
		}
	}
	if _, ok := v.seen[jti]; ok {
		return false
	}
	v.seen[jti] = forget
	return true
}

// LogoutHandler is an app's backchannel_logout_uri endpoint (§2.5): it
// verifies the POSTed logout_token and calls end with its claims, which
// must end the matching local sessions (by SessionID when set, else every
// session of Subject). It answers 200 when end succeeds, and 400 with an
// error object for a bad token or when end fails (§2.8); authd retries
// every answer but a 2xx.
func (v *LogoutVerifier) LogoutHandler(end func(ctx context.Context, c *LogoutClaims) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil || r.PostForm.Get("logout_token") == "" {
			writeLogoutError(w, http.StatusBadRequest, "invalid_request", "a logout_token form field is required")
			return
		}
		c, err := v.Verify(r.Context(), r.PostForm.Get("logout_token"))
		switch {
		case errors.Is(err, ErrUnavailable):
			writeLogoutError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the issuer's keys cannot be fetched")
			return
		case err != nil:
			writeLogoutError(w, http.StatusBadRequest, "invalid_request", "the logout token is not valid")
			return
		}
		if err := end(r.Context(), c); err != nil {
			writeLogoutError(w, http.StatusBadRequest, "logout_failed", "the session could not be ended")
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

func writeLogoutError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}
