package fositestore

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/ory/fosite"

	"github.com/authd/authd/storage"
)

// The five tables fosite writes. They share one shape (migration 0004).
const (
	tableCode    = "oauth2_code"
	tableAccess  = "oauth2_access"
	tableRefresh = "oauth2_refresh"
	tableOIDC    = "oauth2_oidc"
	tablePKCE    = "oauth2_pkce"
)

const insertColumns = `signature, request_id, requested_at, client_id, scopes, granted_scopes,
	requested_audience, granted_audience, form_data, session_data, subject, expires_at`

// newRow flattens r into insertColumns' values for the row keyed by key; exp picks which expiry of the
// session the row copies (for garbage collection only: fosite reads expiry
// from the session itself).
func newRow(key string, r fosite.Requester, exp fosite.TokenType, memo *sessionMemo) ([]any, error) {
	var (
		session any // NULL when the requester has no session
		subject string
		expires *time.Time
	)
	if sess := r.GetSession(); sess != nil {
		b, err := memo.encode(sess)
		if err != nil {
			return nil, fmt.Errorf("fositestore: encode session: %w", err)
		}
		session = b
		subject = sess.GetSubject()
		expires = nullTime(sess.GetExpiresAt(exp))
	}
	clientID := ""
	if c := r.GetClient(); c != nil {
		clientID = c.GetID()
	}
	return []any{
		hashKey(key), r.GetID(), r.GetRequestedAt().UTC(), clientID,
		strs(r.GetRequestedScopes()), strs(r.GetGrantedScopes()),
		strs(r.GetRequestedAudience()), strs(r.GetGrantedAudience()),
		r.GetRequestForm().Encode(), session, subject, expires,
	}, nil
}

// createRequest inserts r into table under key.
func (s *Store) createRequest(ctx context.Context, table, key string, r fosite.Requester, exp fosite.TokenType) error {
	args, err := newRow(key, r, exp, nil)
	if err != nil {
		return err
	}
	return s.insertRow(ctx, table, args)
}

// insertRow inserts newRow's values into table.
func (s *Store) insertRow(ctx context.Context, table string, args []any) error {
	_, err := s.q(ctx).Exec(ctx, `INSERT INTO `+table+` (`+insertColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, args...)
	return mapErr("create "+table, err)
}

const requestColumns = `t.request_id, t.requested_at, t.scopes, t.granted_scopes, t.requested_audience,
	t.granted_audience, t.form_data, t.session_data, t.active`

// requestRow is one scanned row of a token table (requestColumns) and its
// client, before decoding.
type requestRow struct {
	r           fosite.Request
	form        string
	sessionData []byte
	active      bool
	client      Client
}

// dest returns scan targets for requestColumns.
func (w *requestRow) dest() []any {
	return []any{&w.r.ID, &w.r.RequestedAt, &w.r.RequestedScope, &w.r.GrantedScope, &w.r.RequestedAudience,
		&w.r.GrantedAudience, &w.form, &w.sessionData, &w.active}
}

// request builds a fresh fosite.Request from the row, decoding the session
// into session unless it is nil (the revocation path).
func (w *requestRow) request(table string, session fosite.Session) (*fosite.Request, error) {
	r := w.r
	r.RequestedAt = r.RequestedAt.UTC()
	c := w.client
	r.Client = c.loaded()
	var err error
	if r.Form, err = url.ParseQuery(w.form); err != nil {
		return nil, fmt.Errorf("fositestore: decode form of %s: %w", table, err)
	}
	if session != nil && len(w.sessionData) > 0 {
		if err := json.Unmarshal(w.sessionData, session); err != nil {
			return nil, fmt.Errorf("fositestore: decode session of %s: %w", table, err)
		}
	}
	r.Session = session
	return &r, nil
}

// getRequest loads the row of table keyed by key together with its client
// (re-loaded on every call, so a deleted client's tokens are gone) and
// decodes the session into session unless it is nil (the revocation path).
// extraCols (", t.x, t.y") are scanned into extra.
func (s *Store) getRequest(ctx context.Context, table, key string, session fosite.Session,
	extraCols string, extra ...any) (req *fosite.Request, active bool, err error) {
	var w requestRow
	dest := append(w.dest(), extra...)
	dest = append(dest, clientDest(&w.client)...)
	err = s.q(ctx).QueryRow(ctx, `SELECT `+requestColumns+extraCols+`, `+clientColumns+`
		FROM `+table+` t JOIN oauth2_clients c ON c.id = t.client_id
		WHERE t.signature = $1`, hashKey(key)).Scan(dest...)
	if err != nil {
		return nil, false, mapErr("get "+table, err)
	}
	req, err = w.request(table, session)
	if err != nil {
		return nil, false, err
	}
	return req, w.active, nil
}

// deleteRequest removes the row of table keyed by key. Deleting a missing
// row is not an error: fosite's reuse handling aborts on any Delete error.
func (s *Store) deleteRequest(ctx context.Context, table, key string) error {
	_, err := s.q(ctx).Exec(ctx, `DELETE FROM `+table+` WHERE signature = $1`, hashKey(key))
	return mapErr("delete "+table, err)
}

// CreateAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage; code is
// the code's signature.
func (s *Store) CreateAuthorizeCodeSession(ctx context.Context, code string, r fosite.Requester) error {
	return s.createRequest(ctx, tableCode, code, r, fosite.AuthorizeCode)
}

// GetAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage. A used code
// returns the request together with fosite.ErrInvalidatedAuthorizeCode, which
// fosite needs to revoke the tokens the first exchange issued.
func (s *Store) GetAuthorizeCodeSession(ctx context.Context, code string, session fosite.Session) (fosite.Requester, error) {
	r, active, err := s.getRequest(ctx, tableCode, code, session, "")
	if err != nil {
		return nil, err
	}
	if !active {
		return r, fosite.ErrInvalidatedAuthorizeCode
	}
	return r, nil
}

// InvalidateAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage. The
// guarded update changes one row only for the first caller; any later or
// concurrent one gets fosite.ErrInvalidatedAuthorizeCode (ErrNotFound when
// the code never existed).
func (s *Store) InvalidateAuthorizeCodeSession(ctx context.Context, code string) error {
	key := hashKey(code)
	tag, err := s.q(ctx).Exec(ctx, `UPDATE oauth2_code SET active = false WHERE signature = $1 AND active`, key)
	if err != nil {
		return mapErr("invalidate code", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var exists bool
	if err := s.q(ctx).QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM oauth2_code WHERE signature = $1)`, key).
		Scan(&exists); err != nil {
		return mapErr("invalidate code", err)
	}
	if !exists {
		return ErrNotFound
	}
	return fosite.ErrInvalidatedAuthorizeCode
}

// CreateAccessTokenSession implements oauth2.AccessTokenStorage.
func (s *Store) CreateAccessTokenSession(ctx context.Context, signature string, r fosite.Requester) error {
	st := txOf(ctx)
	args, err := newRow(signature, r, fosite.AccessToken, st.sessionMemo())
	if err != nil {
		return err
	}
	if st != nil && st.refresh != nil && st.refresh.add(tableAccess, args, r.GetID()) {
		return nil // written with the rotation by RefreshTx.Commit
	}
	if _, inTx := ctx.Value(txKey{}).(*txState); !inTx {
		return s.accessInserts.insert(ctx, args) // batched with concurrent ones (batch.go)
	}
	return s.insertRow(ctx, tableAccess, args)
}

// GetAccessTokenSession implements oauth2.AccessTokenStorage. Revoked access
// tokens are deleted, so a missing one is ErrNotFound. An access token
// issued by a refresh rotation lives in its refresh token's row
// (access_inline, migration 0030) and is found there while that row is
// active and the access token was not revoked on its own.
func (s *Store) GetAccessTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	var w requestRow
	dest := append(w.dest(), clientDest(&w.client)...)
	err := s.q(ctx).QueryRow(ctx, `SELECT `+requestColumns+`, `+clientColumns+`
		FROM oauth2_access t JOIN oauth2_clients c ON c.id = t.client_id
		WHERE t.signature = $1
		UNION ALL
		SELECT `+requestColumns+`, `+clientColumns+`
		FROM oauth2_refresh t JOIN oauth2_clients c ON c.id = t.client_id
		WHERE t.access_token_signature = $1 AND t.active AND t.access_inline
		LIMIT 1`, hashKey(signature)).Scan(dest...)
	if err != nil {
		return nil, mapErr("get "+tableAccess, err)
	}
	r, err := w.request(tableAccess, session)
	if err != nil {
		return nil, err
	}
	if !w.active {
		return r, fosite.ErrInactiveToken
	}
	return r, nil
}

// DeleteAccessTokenSession implements oauth2.AccessTokenStorage: the row,
// or for an inline access token (GetAccessTokenSession) its flag, so the
// refresh token that carries it stays valid.
func (s *Store) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	_, err := s.q(ctx).Exec(ctx, `WITH inline AS (
			UPDATE oauth2_refresh SET access_inline = false WHERE access_token_signature = $1 AND active AND access_inline
		) DELETE FROM oauth2_access WHERE signature = $1`, hashKey(signature))
	if err != nil {
		return mapErr("delete "+tableAccess, err)
	}
	s.noteRevoked(ctx, revKey{'t', hashKey(signature)})
	return nil
}

// RevokeAccessToken implements oauth2.TokenRevocationStorage: under the
// family's lock it deletes every access token of the family requestID,
// inline ones included (their refresh tokens stay valid).
func (s *Store) RevokeAccessToken(ctx context.Context, requestID string) error {
	return s.inFamily(ctx, requestID, func(ctx context.Context, q storage.Querier) error {
		if _, err := q.Exec(ctx, revokeFamilyAccessSQL, requestID); err != nil {
			return mapErr("revoke access tokens", err)
		}
		s.noteRevoked(ctx, revKey{'r', requestID})
		return nil
	})
}

// revokeFamilyAccessSQL ends every access token of the family $1: rows of
// their own, and inline ones (the family has at most one active refresh
// row, found through oauth2_refresh_active_family_idx).
const revokeFamilyAccessSQL = `WITH inline AS (
		UPDATE oauth2_refresh SET access_inline = false WHERE request_id = $1 AND active AND access_inline
	) DELETE FROM oauth2_access WHERE request_id = $1`

// CreateOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
// fosite passes the raw authorization code; only its hash is stored.
func (s *Store) CreateOpenIDConnectSession(ctx context.Context, authorizeCode string, r fosite.Requester) error {
	return s.createRequest(ctx, tableOIDC, authorizeCode, r, fosite.AuthorizeCode)
}

// GetOpenIDConnectSession implements openid.OpenIDConnectRequestStorage. The
// stored session is decoded into requester's session; a missing row is
// ErrNotFound (= openid.ErrNoSessionFound under errors.Is).
func (s *Store) GetOpenIDConnectSession(ctx context.Context, authorizeCode string, requester fosite.Requester) (fosite.Requester, error) {
	var session fosite.Session
	if requester != nil {
		session = requester.GetSession()
	}
	r, _, err := s.getRequest(ctx, tableOIDC, authorizeCode, session, "")
	if err != nil {
		return nil, err
	}
	return r, nil
}

// DeleteOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
func (s *Store) DeleteOpenIDConnectSession(ctx context.Context, authorizeCode string) error {
	return s.deleteRequest(ctx, tableOIDC, authorizeCode)
}

// CreatePKCERequestSession implements pkce.PKCERequestStorage; signature is
// the authorization code's signature.
func (s *Store) CreatePKCERequestSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.createRequest(ctx, tablePKCE, signature, r, fosite.AuthorizeCode)
}

// GetPKCERequestSession implements pkce.PKCERequestStorage. A consumed row
// returns ErrPKCEConsumed, never ErrNotFound (see ErrPKCEConsumed).
func (s *Store) GetPKCERequestSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	r, active, err := s.getRequest(ctx, tablePKCE, signature, session, "")
	if err != nil {
		return nil, err
	}
	if !active {
		return nil, ErrPKCEConsumed
	}
	return r, nil
}

// DeletePKCERequestSession implements pkce.PKCERequestStorage as a soft
// delete: fosite calls it before checking the verifier.
func (s *Store) DeletePKCERequestSession(ctx context.Context, signature string) error {
	_, err := s.q(ctx).Exec(ctx, `UPDATE oauth2_pkce SET active = false WHERE signature = $1`, hashKey(signature))
	return mapErr("delete pkce", err)
}
