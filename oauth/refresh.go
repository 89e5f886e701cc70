package oauth

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/ory/fosite"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/reqctx"
	"github.com/authd/authd/storage/fositestore"
)

// refresh runs grant_type=refresh_token in one fositestore.RefreshTx: a
// READ COMMITTED transaction holding the lock of the token's family, in
// two round trips (begin, lock and read the token; rotate and commit). A retry inside the reuse window gets the response saved by the
// first use (replayable).
func (p *Provider) refresh(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	const grant = "refresh_token"
	sig := p.strategy.RefreshTokenSignature(ctx, r.PostForm.Get("refresh_token"))

	tx, err := p.store.BeginRefresh(ctx, sig)
	if err != nil {
		p.refreshUnavailable(ctx, w, err)
		return
	}
	defer tx.Rollback(ctx)
	// The user, from the cache or, on a miss, on the transaction's own
	// connection. A failed read is the database's fault, never the
	// token's: answering invalid_grant would make the client throw a
	// valid token away.
	user, err := p.refreshUser(ctx, tx)
	if err != nil {
		p.refreshUnavailable(ctx, w, err)
		return
	}

	sess := NewSession("")
	if state := tx.State(); replayable(state, p.cfg.RefreshReuseWindow) {
		ar, err := p.op.NewAccessRequest(tx.Replay(ctx), r, sess)
		if cerr := tx.Commit(ctx, nil); err == nil && cerr != nil {
			p.refreshUnavailable(ctx, w, cerr)
			return
		}
		if err != nil {
			p.tokenError(ctx, w, ar, grant, err)
			return
		}
		body, err := p.openResponse(state.Response, sig)
		if err != nil {
			p.tokenError(ctx, w, ar, grant, fosite.ErrServerError.WithWrap(err))
			return
		}
		p.metrics.tokens.WithLabelValues(grant, "replayed").Inc()
		writeTokenJSON(w, body)
		return
	}

	txCtx := tx.Context(ctx)
	ar, err := p.op.NewAccessRequest(txCtx, r, sess)
	if err != nil {
		// Commit: on reuse fosite has just revoked the family in this
		// transaction, and that must stick.
		if cerr := tx.Commit(ctx, nil); cerr != nil {
			reqctx.Logger(ctx).Error("commit after refresh rejection", zap.Error(cerr))
			p.refreshUnavailable(ctx, w, cerr)
			return
		} else if errors.Is(err, fosite.ErrInactiveToken) {
			p.metrics.refreshReuse.Inc() // fosite's reuse path: the family is now revoked
		}
		p.tokenError(ctx, w, ar, grant, err)
		return
	}
	if sess.GetSubject() != sess.ClientID { // a user's token: roles live, user enabled
		if user == nil || user.UserID != sess.GetSubject() || user.Disabled {
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
	if err != nil {
		p.tokenError(ctx, w, ar, grant, fosite.ErrServerError.WithWrap(err))
		return
	}
	if err := tx.Commit(ctx, p.sealResponse(body, sig)); err != nil {
		p.refreshUnavailable(ctx, w, err)
		return
	}
	p.metrics.tokenIssued(grant, ar.GetClient().GetID())
	writeTokenJSON(w, body)
}

// replayable is the reuse-window policy: a used refresh token presented
// again gets the response of its rotation only when that response was
// saved, the rotation is younger than window (by the database's clock) and
// the token minted in its place is still unused. A client that never
// received the response cannot have used its successor, so a presented
// token whose successor was used, or any older one, is reuse: fosite then
// revokes the family. A zero window disables replays.
func replayable(st fositestore.RefreshState, window time.Duration) bool {
	return st.Found && !st.Active && st.Used && len(st.Response) > 0 && st.SuccessorActive && st.SinceUse < window
}

// refreshUnavailable answers a refresh whose database work failed:
// 503 temporarily_unavailable with Retry-After, so the client keeps its
// refresh token and retries. A failure fosite already classified (an
// OAuth error value) is answered as such.
func (p *Provider) refreshUnavailable(ctx context.Context, w http.ResponseWriter, err error) {
	var rfc *fosite.RFC6749Error
	if !errors.As(err, &rfc) {
		w.Header().Set("Retry-After", "1")
		err = errUnavailable.WithWrap(err)
	}
	p.tokenError(ctx, w, nil, "refresh_token", err)
}

// refreshUser reads the disabled flag and roles of the user behind the
// refresh token tx read. It returns nil, nil when the token or user is
// unknown (fosite then answers) and an error only when the database did not
// answer. The roles come from accounts' cache, as for introspection: a
// change is seen at once on this replica and within a notification's
// latency on the others, and disabling a user or removing a role revokes
// their refresh tokens at once anyway (RevokeSubject, under each family's
// lock). A miss reads on tx's connection: waiters for the family's lock
// hold connections, and the holder must not need a second one.
func (p *Provider) refreshUser(ctx context.Context, tx *fositestore.RefreshTx) (*accounts.Access, error) {
	// Every session's ClientID is its row's client_id (authorize, token and
	// register_grant set it so): a token whose subject is its client is a
	// client's own.
	st := tx.State()
	if !st.Found || st.Subject == "" || st.Subject == st.ClientID {
		return nil, nil
	}
	a, err := p.accts.CachedAccessVia(ctx, tx.Querier(), st.Subject)
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
