// Package fositestore is authd's PostgreSQL storage for ory/fosite v0.49.0:
// OAuth clients, authorization codes, access and refresh tokens, OIDC and
// PKCE request sessions, and client-assertion JTIs (migration 0004).
//
// # Contract with fosite
//
// Store implements fosite.ClientManager, oauth2.CoreStorage,
// oauth2.TokenRevocationStorage, openid.OpenIDConnectRequestStorage,
// pkce.PKCERequestStorage and fosite's storage.Transactional. It follows the
// rules fosite relies on (FOSITE-NOTES.md §3, §9, in the team docs):
//
//   - Rows are keyed by the SHA-256 hex of the key fosite passes, including
//     the raw authorize code used for OIDC sessions.
//   - request_id names a token family and is not unique; RevokeRefreshToken
//     and RevokeAccessToken hit every row of the family.
//   - A used code returns (requester, fosite.ErrInvalidatedAuthorizeCode) and
//     a used refresh token (requester, fosite.ErrInactiveToken): fosite needs
//     the requester to revoke the family.
//   - A nil session (the revocation path) skips decoding; otherwise the
//     stored session JSON is decoded into the caller's session value.
//   - Every Get re-loads the client in the same query, so a deleted client
//     (whose rows cascade away) kills its tokens.
//   - Consuming a code or rotating a refresh token is a guarded
//     UPDATE … WHERE signature=$1 AND active that must change one row, so two
//     concurrent requests cannot both win.
//   - A consumed PKCE row is soft-deleted and a Get of it fails with
//     ErrPKCEConsumed (not ErrNotFound), so a failed verifier cannot be retried
//     as "no PKCE" (fosite PR #883).
//   - Missing rows are ErrNotFound (which errors.Is both fosite.ErrNotFound and
//     storage.ErrNotFound); Postgres serialization failures and deadlocks are
//     fosite.ErrSerializationFailure.
//
// # Transactions
//
// BeginTX puts a transaction into the returned context and every query made
// with that context uses it. A BeginTX inside an existing transaction joins
// it: its Commit and Rollback are no-ops and the outermost owner decides.
// fosite's own BeginTX calls use Options.IsoLevel (REPEATABLE READ by
// default, as Hydra does); BeginTXWith picks another level.
//
// # Refresh-token reuse window
//
// Refresh tokens rotate on every use. So that browser tabs and network
// retries presenting the same refresh token within Options.ReuseWindow get the
// same new token pair instead of killing the family, the token endpoint runs
// grant_type=refresh_token like this, in ONE transaction:
//
//	ctx, err := st.BeginTXWith(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
//	rs, err := st.LockRefreshToken(ctx, sig)      // SELECT … FOR UPDATE: same-token refreshes queue here
//	if st.Replayable(rs) {                          // used within the window, response cached
//	    ar, err := provider.NewAccessRequest(fositestore.WithinReuseWindow(ctx), r, sess)
//	    // fosite authenticates the client and checks it owns the token; the
//	    // store treats the used row as active only under this marker.
//	    // On success: commit, decrypt rs.RotatedResponse and send it as is.
//	    // Do NOT call NewAccessResponse here (the row is already rotated).
//	} else {
//	    ar, err := provider.NewAccessRequest(ctx, r, sess)
//	    resp, err := provider.NewAccessResponse(ctx, ar) // RotateRefreshToken: active=false, first_used_at=now
//	    err = st.SaveRotatedResponse(ctx, sig, encrypt(resp))
//	}
//	st.Commit(ctx)
//
// BeginRefresh(ctx, sig) does the first two steps in one round trip (BEGIN
// and the lock travel together); the token endpoint uses it.
//
// sig is the refresh token's signature as fosite's strategy computes it
// (RefreshTokenSignature); the store hashes it like every other key. The lock
// needs READ COMMITTED: under REPEATABLE READ a waiter would fail with a
// serialization error instead of reading the winner's committed response.
//
// Under the lock the rotation cannot lose, so the store holds its writes
// (RotateRefreshToken and the new pair's Create*Session calls) and
// SaveRotatedResponse writes them as one statement: the used row is
// rewritten once, with first_used_at and the response together, and the
// access token issued with it is deleted by primary key. Any other query of
// the transaction, and Commit, writes the held rotation first, so no reader
// can tell (rotation.go). In a transaction begun by BeginRefresh,
// SaveRotatedResponse only records the response and Commit sends the
// rotation and COMMIT together (pipetx.go); a failing rotation skips the
// COMMIT and Commit returns its error.
//
// When NewAccessRequest fails with invalid_grant because of reuse (a used
// token outside the window, or without the marker), fosite has already
// revoked the family inside the transaction: COMMIT it anyway, or the
// revocation is undone. Without the marker (introspection, revocation) a used
// row is always inactive.
//
// # Access tokens outside a transaction
//
// CreateAccessTokenSession without a transaction in ctx (client_credentials)
// shares one multi-row INSERT with concurrent calls and returns once that
// statement has committed; a failing batch is retried row by row, so a bad
// row fails only its own call (batch.go).
//
// # Other queries
//
// RevokeSubject and RevokeClientTokens end every token of a user or client at
// once; DeleteExpired garbage-collects expired rows, keeping used refresh
// tokens until their own expiry so reuse is detected for their whole life.
package fositestore
