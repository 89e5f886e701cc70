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
// # Refresh rotation and token families
//
// A refresh runs in a RefreshTx (refreshtx.go): BeginRefresh begins a READ
// COMMITTED transaction, takes the lock of the token's family (named by the
// token's row, in the same statement) and reads the token, in one round
// trip; fosite's calls inside RefreshTx.Context are served from that row
// and the rotation is held; RefreshTx.Commit writes the rotation, the new
// pair and the sealed response in one statement together with COMMIT. Two
// round trips per rotation.
//
// Every change to a family's tokens takes the same lock (familyLockSQL):
// rotation, reuse detection and RFC 7009 revocation (RevokeRefreshToken,
// RevokeAccessToken), and revocation by user, browser session or client
// (revokeWhere). A revocation therefore either waits for a rotation in
// flight and revokes what it minted, or runs first and makes it find its
// token revoked: a revoked family never has a survivor.
//
// The store keeps what the reuse-window policy (package oauth) decides on:
// when a token was rotated (first_used_at, the database's clock, reported
// as RefreshState.SinceUse), whether the token minted in its place is still
// unused (SuccessorActive: nothing in the family was rotated later and a
// token of it is active) and the sealed response of the rotation. A replay is answered under RefreshTx.Replay,
// where the used token counts as active so fosite authenticates the client
// and checks ownership, and nothing can be issued. When NewAccessRequest
// fails with invalid_grant because of reuse, fosite has already revoked the
// family inside the RefreshTx: commit it anyway, or the revocation is
// undone.
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
