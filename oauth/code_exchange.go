package oauth

import (
	"context"
	"net/http"

	"github.com/ory/fosite"
	"go.uber.org/zap"

	"github.com/authd/authd/internal/reqctx"
)

// exchangeCode runs grant_type=authorization_code in one transaction that
// holds the lock of the code's token family (fositestore.InFamily), so
// concurrent exchanges of one code run one after the other: the first
// issues tokens, and every later one finds the code used, revokes what the
// first issued (RFC 6749 §4.1.2: the code may have been stolen) and gets
// invalid_grant. Without the lock a late exchange could fail on state the
// first left half-done (its PKCE row consumed, its code row locked) before
// the first's tokens existed, and they would survive the replay. The
// transaction is committed even when fosite refuses the request: the
// revocation of a replayed code must stick.
func (p *Provider) exchangeCode(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	const grant = "authorization_code"
	family, err := p.store.CodeFamily(ctx, p.strategy.AuthorizeCodeSignature(ctx, r.PostForm.Get("code")))
	if err != nil {
		w.Header().Set("Retry-After", "1")
		p.tokenError(ctx, w, nil, grant, errUnavailable.WithWrap(err))
		return
	}
	sess := NewSession("")
	var (
		ar     fosite.AccessRequester
		resp   fosite.AccessResponder
		reqErr error
	)
	err = p.store.InFamily(ctx, family, func(ctx context.Context) error {
		ar, reqErr = p.op.NewAccessRequest(ctx, r, sess)
		if reqErr != nil {
			return nil
		}
		var err error
		resp, err = p.op.NewAccessResponse(ctx, ar)
		return err
	})
	if err == nil {
		err = reqErr
	}
	if err != nil {
		p.tokenError(ctx, w, ar, grant, err)
		return
	}
	p.metrics.tokenIssued(grant, ar.GetClient().GetID())
	reqctx.Logger(ctx).Info("token issued", zap.String("grant_type", grantLabel(grant)),
		zap.String("client_id", ar.GetClient().GetID()), zap.String("subject", sess.GetSubject()))
	p.op.WriteAccessResponse(ctx, w, ar, resp)
}
