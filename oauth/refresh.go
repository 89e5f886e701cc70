package oauth

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/ory/fosite"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/reqctx"
	"github.com/authd/authd/storage/fositestore"
)

// refresh runs grant_type=refresh_token under the store's idempotency
// protocol (storage/fositestore package doc): one READ COMMITTED
// transaction, a row lock on the presented token, and for a retry inside
// the reuse window the identical response saved by the first use.
func (p *Provider) refresh(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	const grant = "refresh_token"
	sig := p.strategy.RefreshTokenSignature(ctx, r.PostForm.Get("refresh_token"))

	// Read the user before taking the lock, on the pool: waiters for the
	// lock hold connections, and the winner must not need a second one.
	user, userErr := p.refreshUser(ctx, sig)

	// BEGIN (READ COMMITTED) and the row lock, in one round trip.
	txCtx, rs, err := p.store.BeginRefresh(ctx, sig)
	if err != nil {
		p.tokenError(ctx, w, nil, grant, fosite.ErrServerError.WithWrap(err))
		return
	}
	finished := false
	defer func() {
		if !finished {
			_ = p.store.Rollback(txCtx)
		}
	}()
	commit := func() error {
		finished = true
		return p.store.Commit(txCtx)
	}

	sess := NewSession("")
	if p.store.Replayable(rs) {
		ar, err := p.op.NewAccessRequest(fositestore.WithinReuseWindow(txCtx), r, sess)
		if cerr := commit(); err == nil && cerr != nil {
			err = fosite.ErrServerError.WithWrap(cerr)
		}
		if err != nil {
			p.tokenError(ctx, w, ar, grant, err)
			return
		}
		body, err := p.openResponse(rs.RotatedResponse, sig)
		if err != nil {
			p.tokenError(ctx, w, ar, grant, fosite.ErrServerError.WithWrap(err))
			return
		}
		p.metrics.tokens.WithLabelValues(grant, "replayed").Inc()
		writeTokenJSON(w, body)
		return
	}

	ar, err := p.op.NewAccessRequest(txCtx, r, sess)
	if err != nil {
		// Commit: on reuse fosite has just revoked the family in this
		// transaction, and that must stick.
		if cerr := commit(); cerr != nil {
			reqctx.Logger(ctx).Error("commit after refresh rejection", zap.Error(cerr))
		} else if errors.Is(err, fosite.ErrInactiveToken) {
			p.metrics.refreshReuse.Inc() // fosite's reuse path: the family is now revoked
		}
		p.tokenError(ctx, w, ar, grant, err)
		return
	}
	if sess.GetSubject() != sess.ClientID { // a user's token: roles live, user enabled
		switch {
		case userErr != nil:
			p.tokenError(ctx, w, ar, grant, fosite.ErrServerError.WithWrap(userErr))
			return
		case user == nil || user.UserID != sess.GetSubject() || user.Disabled:
			p.tokenError(ctx, w, ar, grant, fosite.ErrInvalidGrant.WithHint("The user no longer exists or is disabled."))
			return
		}
		// fosite hands the grant a clone of the stored session, so the live
		// roles must go on ar's session, not on the shell we passed in.
		if as, ok := ar.GetSession().(*Session); ok {
			as.setRoles(user.Roles, idTokenHasRoles(ar.GetGrantedScopes()))
		}
	}
	resp, err := p.op.NewAccessResponse(txCtx, ar)
	if err != nil {
		p.tokenError(ctx, w, ar, grant, err)
		return
	}
	body, err := json.Marshal(resp.ToMap())
	if err == nil {
		err = p.store.SaveRotatedResponse(txCtx, sig, p.sealResponse(body, sig))
	}
	if err == nil {
		err = commit()
	}
	if err != nil {
		p.tokenError(ctx, w, ar, grant, fosite.ErrServerError.WithWrap(err))
		return
	}
	p.metrics.tokenIssued(grant, ar.GetClient().GetID())
	writeTokenJSON(w, body)
}

// refreshUser reads the disabled flag and roles of the user behind a
// refresh token, without a lock. It returns nil, nil when the token or user
// is unknown (fosite then answers). The roles come from accounts' cache, as
// for introspection: a change is seen at once on this replica and within a
// notification's latency on the others, and disabling a user or removing a
// role revokes their refresh tokens at once anyway (RevokeSubject).
func (p *Provider) refreshUser(ctx context.Context, sig string) (*accounts.Access, error) {
	// Subject and client only: the session is decoded once, by fosite,
	// from the row the lock reads. Every session's ClientID is its row's
	// client_id (authorize, token and register_grant set it so).
	subject, clientID, err := p.store.RefreshTokenSubject(ctx, sig)
	if err != nil || subject == "" || subject == clientID {
		return nil, nil
	}
	a, err := p.accts.CachedAccess(ctx, subject)
	if errors.Is(err, accounts.ErrNotFound) {
		return nil, nil
	}
	return a, err
}

// writeTokenJSON writes a token response body as fosite's
// WriteAccessResponse would, so a replay is byte-identical.
func writeTokenJSON(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// sealResponse encrypts a token response for the reuse window (AES-GCM, the
// refresh token signature as associated data, so a blob cannot be moved to
// another row).
func (p *Provider) sealResponse(body []byte, sig string) []byte {
	nonce := make([]byte, p.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return p.aead.Seal(nonce, nonce, body, []byte(sig))
}

func (p *Provider) openResponse(blob []byte, sig string) ([]byte, error) {
	n := p.aead.NonceSize()
	if len(blob) < n {
		return nil, errors.New("oauth: cached refresh response too short")
	}
	return p.aead.Open(nil, blob[:n], blob[n:], []byte(sig))
}
