package fositestore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/ory/fosite"
)

var _ fosite.PARStorage = (*Store)(nil)

// ErrPARUsed is returned by ConsumePARSession when the pushed request has
// already yielded its authorization code (or never existed, or expired).
var ErrPARUsed = errors.New("fositestore: pushed authorization request already used or expired")

// CreatePARSession implements fosite.PARStorage. The row is keyed by the
// SHA-256 of requestURI and lives until the expiry fosite put on the
// session (PushedAuthorizeRequestContext), or the store's clock plus five
// minutes when there is none.
func (s *Store) CreatePARSession(ctx context.Context, requestURI string, r fosite.AuthorizeRequester) error {
	now := s.clock()
	exp := now.Add(5 * time.Minute)
	if sess := r.GetSession(); sess != nil {
		if t := sess.GetExpiresAt(fosite.PushedAuthorizeRequestContext); !t.IsZero() {
			exp = t.UTC()
		}
	}
	redirect := ""
	if u := r.GetRedirectURI(); u != nil {
		redirect = u.String()
	}
	requestedAt := r.GetRequestedAt()
	if requestedAt.IsZero() {
		requestedAt = now
	}
	ar, _ := r.(*fosite.AuthorizeRequest)
	defMode := ""
	if ar != nil {
		defMode = string(ar.DefaultResponseMode)
	}
	_, err := s.q(ctx).Exec(ctx, `INSERT INTO oauth2_par (signature, request_id, requested_at, client_id, scopes,
		audience, redirect_uri, response_types, response_mode, default_response_mode, state, form_data, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		hashKey(requestURI), r.GetID(), requestedAt.UTC(), r.GetClient().GetID(), strs(r.GetRequestedScopes()),
		strs(r.GetRequestedAudience()), redirect, strs(r.GetResponseTypes()), string(r.GetResponseMode()), defMode,
		r.GetState(), r.GetRequestForm().Encode(), exp)
	return mapErr("create par session", err)
}

// GetPARSession implements fosite.PARStorage: the pushed request behind
// requestURI, with its client reloaded, its original request id (the id of
// the token family it starts) and no session. A used or expired request is
// ErrNotFound.
func (s *Store) GetPARSession(ctx context.Context, requestURI string) (fosite.AuthorizeRequester, error) {
	var (
		id, clientID, redirect, mode, defMode, state, form string
		scopes, audience, responseTypes                    []string
		requestedAt                                        time.Time
	)
	err := s.q(ctx).QueryRow(ctx, `SELECT request_id, requested_at, client_id, scopes, audience, redirect_uri,
		response_types, response_mode, default_response_mode, state, form_data
		FROM oauth2_par WHERE signature = $1 AND used_at IS NULL AND expires_at > $2`,
		hashKey(requestURI), s.clock()).
		Scan(&id, &requestedAt, &clientID, &scopes, &audience, &redirect, &responseTypes, &mode, &defMode, &state, &form)
	if err != nil {
		return nil, mapErr("get par session", err)
	}
	client, err := s.GetClient(ctx, clientID)
	if err != nil {
		return nil, err
	}
	values, err := url.ParseQuery(form)
	if err != nil {
		return nil, fmt.Errorf("fositestore: par form: %w", err)
	}
	ar := fosite.NewAuthorizeRequest()
	ar.ID = id
	ar.RequestedAt = requestedAt
	ar.Client = client
	ar.Form = values
	ar.RequestedScope = scopes
	ar.RequestedAudience = audience
	ar.ResponseTypes = responseTypes
	ar.State = state
	ar.ResponseMode = fosite.ResponseModeType(mode)
	ar.DefaultResponseMode = fosite.ResponseModeType(defMode)
	ar.Session = nil
	if redirect != "" {
		if ar.RedirectURI, err = url.Parse(redirect); err != nil {
			return nil, fmt.Errorf("fositestore: par redirect uri: %w", err)
		}
	}
	return ar, nil
}

// DeletePARSession implements fosite.PARStorage and deliberately keeps the
// row: fosite calls it as soon as it has read the request, but the browser
// may still have to come back with the same request_uri after logging in
// or consenting. ConsumePARSession spends it when the code is issued.
func (s *Store) DeletePARSession(context.Context, string) error { return nil }

// ConsumePARSession marks the pushed request behind requestURI used; of any
// number of concurrent callers exactly one succeeds. Others, and calls for
// an expired or unknown request, get ErrPARUsed.
func (s *Store) ConsumePARSession(ctx context.Context, requestURI string) error {
	now := s.clock()
	tag, err := s.q(ctx).Exec(ctx, `UPDATE oauth2_par SET used_at = $2
		WHERE signature = $1 AND used_at IS NULL AND expires_at > $2`, hashKey(requestURI), now)
	if err != nil {
		return mapErr("consume par session", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrPARUsed
	}
	return nil
}
