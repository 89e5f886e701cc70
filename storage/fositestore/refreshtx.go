package fositestore

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ory/fosite"

	"github.com/authd/authd/storage"
)

// familyLockSQL takes the transaction-scoped lock of one refresh family
// (request_id). Everything that changes a family's tokens takes it first:
// rotation (BeginRefresh), reuse detection and RFC 7009 revocation
// (RevokeRefreshToken, RevokeAccessToken), and revocation by user, session
// or client (revokeWhere). The statements that follow it run on a snapshot
// taken after the lock was granted, so they see every token a rotation
// minted before it committed, and a rotation waiting on the lock finds its
// token revoked. The two-key form keeps these locks apart from any other
// advisory lock; a hash collision only serialises two families needlessly.
const familyLockSQL = `SELECT pg_advisory_xact_lock(1919316840, hashtext($1))`

// errRotationPending is returned by a statement a refresh transaction is
// asked to run between RefreshTx's rotation and its Commit: fosite makes no
// such call, and running it first would reorder the writes.
var errRotationPending = errors.New("fositestore: statement after the refresh token was rotated; commit first")

// RefreshState is what BeginRefresh read of the presented token under its
// family's lock. Times are measured by the database's clock, so replicas
// with skewed clocks agree.
type RefreshState struct {
	Found    bool // false: no such token (the other fields are zero)
	Active   bool // not yet used
	ClientID string
	// Subject is the token's user (its client's id for a client's own
	// token), for the token endpoint's live user check.
	Subject string
	// SinceUse is how long ago the token was rotated; zero when it was not.
	SinceUse time.Duration
	// Used: the token was rotated (first_used_at is set).
	Used bool
	// SuccessorActive: the token is used and the token minted in its place
	// is still unused and unrevoked, so whoever presents this one may never
	// have received it.
	SuccessorActive bool
	// Response is the sealed token response of its rotation (Commit); nil
	// when none was saved or the family was revoked since.
	Response []byte
}

// RefreshTx is one grant_type=refresh_token request's transaction: a
// pooled connection in a READ COMMITTED transaction holding the lock of the
// presented token's family, the token row read under that lock, and the
// rotation fosite asks for, written by Commit.
//
// The token endpoint drives it like this:
//
//	tx, err := st.BeginRefresh(ctx, sig)            // round trip 1: BEGIN, family lock, token row
//	defer tx.Rollback(ctx)
//	user := … read through tx.Querier() on a cache miss
//	if policyAllowsReplay(tx.State()) {
//	    _, err = provider.NewAccessRequest(tx.Replay(ctx), r, sess) // authenticates the client, checks ownership
//	    err = tx.Commit(ctx, nil)                   // round trip 2; send State().Response
//	} else {
//	    ar, err := provider.NewAccessRequest(tx.Context(ctx), r, sess) // reuse: fosite revokes the family here
//	    resp, err := provider.NewAccessResponse(tx.Context(ctx), ar)   // Rotate + the new pair, held
//	    err = tx.Commit(ctx, seal(resp))            // round trip 2: the rotation and COMMIT together
//	}
//
// Inside tx.Context the store serves fosite's GetRefreshTokenSession of the
// presented token from the row already read, holds RotateRefreshToken and
// the new pair's Create*Session calls, and Commit writes them as one
// statement with the saved response. Any other statement runs on the
// transaction, except after the rotation (errRotationPending). When
// NewAccessRequest fails because of reuse, fosite has revoked the family in
// this transaction: Commit it anyway, or the revocation is undone.
//
// A RefreshTx is used by one goroutine.
type RefreshTx struct {
	s      *Store
	conn   *pgxpool.Conn // nil once committed or rolled back
	key    string        // hashed signature of the presented token
	family string        // the family whose lock is held; "" when none
	state  RefreshState
	row    requestRow // the presented token's row, when state.Found
	// accessKey is the hashed signature of the access token issued with
	// the presented token, "" when the row names none; accessInline: that
	// access token lives in the row itself (migration 0030), not in a row
	// of its own.
	accessKey    string
	accessInline bool
	rot          *rotation // the rotation fosite asked for; nil until then
	shared       *txShared
	memo         sessionMemo
}

// sessionMemo keeps the last session a rotation encoded: fosite stores one
// requester, with one session, under both signatures of a rotation (the
// new access and refresh token, one call after the other), and encoding it
// twice was ~2.5% of a rotation's CPU in authd. Only a pointer session is
// remembered (compared by identity); anything else is encoded every time.
type sessionMemo struct {
	sess fosite.Session
	json string
}

func (m *sessionMemo) encode(sess fosite.Session) (string, error) {
	ptr := reflect.ValueOf(sess).Kind() == reflect.Pointer
	if m != nil && ptr && m.sess == sess {
		return m.json, nil
	}
	b, err := json.Marshal(sess)
	if err != nil {
		return "", err
	}
	if m != nil && ptr {
		m.sess, m.json = sess, string(b)
	}
	return string(b), nil
}

// sessionMemo is the memo of the refresh transaction st belongs to; nil
// (encode every time) outside one.
func (st *txState) sessionMemo() *sessionMemo {
	if st == nil || st.refresh == nil {
		return nil
	}
	return &st.refresh.memo
}

// rotation is the presented token's rotation and the pair fosite issues in
// its place, not yet written.
type rotation struct {
	access  []any // insertColumns values of the new access token; nil until created
	refresh []any // insertColumns values + access_token_signature of the new refresh token
}

// lockedColumns are read by BeginRefresh under the family lock: the whole
// row and its client (so fosite's GetRefreshTokenSession costs no round
// trip), and, for a used token only, whether its successor is still
// unused. Under the lock a family has at most one active token, minted by
// its latest rotation: the successor of a used token is unused exactly
// when no token of the family was rotated after it and one is still
// active. (A column naming the successor would say the same, but every
// rotation would write it, and the used row would then no longer fit
// inline with its saved response.)
const lockedColumns = requestColumns + `, t.subject, t.rotated_response, t.access_token_signature, t.access_inline,
	t.first_used_at IS NOT NULL,
	COALESCE(floor(extract(epoch FROM clock_timestamp() - t.first_used_at) * 1000000)::bigint, 0),
	CASE WHEN t.active OR t.first_used_at IS NULL THEN false
		ELSE EXISTS (SELECT 1 FROM oauth2_refresh a WHERE a.request_id = t.request_id AND a.active)
			AND NOT EXISTS (SELECT 1 FROM oauth2_refresh u WHERE u.request_id = t.request_id AND u.first_used_at > t.first_used_at)
	END, ` + clientColumns

// familyLockByTokenSQL takes the lock of the family of the refresh token
// whose hashed signature is $1 (familyLockSQL), naming the family: the
// token's request_id never changes, so it is read without a lock, and the
// lock is taken in the same statement instead of a round trip of its own.
// No row, no lock.
const familyLockByTokenSQL = `SELECT request_id, pg_advisory_xact_lock(1919316840, hashtext(request_id)) IS NULL
	FROM oauth2_refresh WHERE signature = $1`

// BeginRefresh begins the transaction of the refresh of the token
// signature, takes the lock of its family and reads the token, in one
// round trip: BEGIN, the lock (familyLockByTokenSQL) and the read travel
// together, and the read, a statement of its own, runs on a snapshot taken
// after the lock was granted. Concurrent refreshes, revocations and reuse
// detections of one family queue on the lock. An unknown token gives a
// RefreshTx whose State().Found is false, so that fosite still
// authenticates the client and answers.
func (s *Store) BeginRefresh(ctx context.Context, signature string) (*RefreshTx, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, mapErr("begin", err)
	}
	t := &RefreshTx{s: s, conn: conn, key: hashKey(signature), shared: &txShared{}}
	var (
		sinceUs int64
		used    bool
		null    bool
	)
	dest := append(t.row.dest(), &t.state.Subject, &t.state.Response, &t.accessKey, &t.accessInline, &used, &sinceUs, &t.state.SuccessorActive)
	dest = append(dest, clientDest(&t.row.client)...)
	b := &pgx.Batch{}
	b.Queue("begin isolation level read committed")
	b.Queue(familyLockByTokenSQL, t.key)
	b.Queue(`SELECT `+lockedColumns+`
		FROM oauth2_refresh t JOIN oauth2_clients c ON c.id = t.client_id
		WHERE t.signature = $1`, t.key)
	br := conn.SendBatch(ctx, b)
	_, err = br.Exec()
	if err == nil {
		err = br.QueryRow().Scan(&t.family, &null)
		if errors.Is(err, pgx.ErrNoRows) {
			err = nil // no such token: nothing locked, the read finds nothing either
		}
	}
	if err == nil {
		err = br.QueryRow().Scan(dest...)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	switch err = mapErr("lock refresh token", err); {
	case errors.Is(err, ErrNotFound):
		t.state = RefreshState{}
	case err != nil:
		t.end(ctx)
		return nil, err
	case t.family == "" || t.row.r.ID != t.family:
		// Created between the lock and the read (signatures are random,
		// so not in practice): not under our lock, so not ours to rotate.
		t.state = RefreshState{}
	default:
		t.state.Found, t.state.Active, t.state.ClientID = true, t.row.active, t.row.client.ID
		t.state.Used = used
		if used {
			t.state.SinceUse = time.Duration(sinceUs) * time.Microsecond
		}
	}
	return t, nil
}

// State returns what BeginRefresh read.
func (t *RefreshTx) State() RefreshState { return t.state }

// Querier runs statements on the transaction's connection, for reads the
// token endpoint makes under the lock (the user behind the token, on a
// cache miss): a second connection could wait behind a pool full of
// requests queued on this very lock.
func (t *RefreshTx) Querier() storage.Querier { return refreshConn{t} }

// Context returns ctx carrying the transaction, for fosite's
// NewAccessRequest and NewAccessResponse: the presented token counts as
// active only if it is unused, so a used one makes fosite revoke the family
// (in this transaction, under the lock).
func (t *RefreshTx) Context(ctx context.Context) context.Context {
	return context.WithValue(ctx, txKey{}, &txState{tx: refreshConn{t}, shared: t.shared, refresh: t})
}

// Replay returns ctx carrying the transaction in replay mode: the presented
// token counts as active even though it was rotated, so fosite's
// NewAccessRequest authenticates the client and checks it owns the token
// without revoking anything, and nothing can be rotated or issued. The
// caller decides when a replay is allowed (the reuse-window policy) and
// answers with State().Response.
func (t *RefreshTx) Replay(ctx context.Context) context.Context {
	return context.WithValue(ctx, txKey{}, &txState{tx: refreshConn{t}, shared: t.shared, refresh: t, replay: true})
}

// Commit writes the rotation fosite asked for, if any, with response (the
// sealed token response, kept for replays; nil saves none), and commits, in
// one round trip. A failure rolls everything back and returns the error;
// the RefreshTx is finished either way.
func (t *RefreshTx) Commit(ctx context.Context, response []byte) error {
	if t.conn == nil {
		return pgx.ErrTxClosed
	}
	defer t.end(ctx)
	b := &pgx.Batch{}
	if t.rot != nil {
		sql, args := t.rotationStatement(response)
		b.Queue(sql, args...)
	}
	b.Queue("commit")
	br := t.conn.SendBatch(ctx, b)
	rotated := true
	var err error
	if t.rot != nil {
		if err = br.QueryRow().Scan(&rotated); err != nil {
			err = mapErr("rotate refresh token", err)
		}
	}
	var tag pgconn.CommandTag
	if err == nil {
		if tag, err = br.Exec(); err != nil {
			err = mapErr("commit", err)
		}
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		err = mapErr("commit", cerr)
	}
	switch {
	case err != nil:
		return err
	case tag.String() != "COMMIT":
		return mapErr("commit", pgx.ErrTxCommitRollback)
	case !rotated:
		// Under the family lock this cannot happen; nothing was inserted
		// either (the new rows depend on the rotation).
		return fosite.ErrInactiveToken
	}
	return nil
}

// Rollback ends the transaction without writing anything. It is a no-op
// after Commit, so it can be deferred.
func (t *RefreshTx) Rollback(ctx context.Context) {
	if t.conn != nil {
		t.end(ctx)
	}
}

// end finishes whatever transaction is still open, returns the connection
// to the pool (which closes it instead if it is broken) and announces the
// revocations made.
func (t *RefreshTx) end(ctx context.Context) {
	if c := t.conn.Conn(); !c.IsClosed() && c.PgConn().TxStatus() != 'I' {
		// Rollback must run even when the request was cancelled, or the
		// connection stays busy until the pool notices.
		_, _ = t.conn.Exec(context.WithoutCancel(ctx), "rollback")
	}
	t.conn.Release()
	t.conn = nil
	t.rot = nil
	t.s.flushRevoked(&txState{shared: t.shared})
}

// get serves GetRefreshTokenSession for the presented token from the row
// read under the lock; ok is false for any other signature.
func (t *RefreshTx) get(signature string, session fosite.Session) (r *fosite.Request, active, ok bool, err error) {
	if !t.state.Found || hashKey(signature) != t.key {
		return nil, false, false, nil
	}
	r, err = t.row.request(tableRefresh, session)
	return r, t.row.active && t.rot == nil, true, err
}

// rotate records the rotation of the presented token. Only an unused token
// this transaction read, of family requestID, rotates, once, and never in
// replay mode; anything else is fosite.ErrInactiveToken.
func (t *RefreshTx) rotate(replay bool, requestID, signature string) error {
	if replay || t.rot != nil || !t.state.Found || !t.row.active || hashKey(signature) != t.key || t.row.r.ID != requestID {
		return fosite.ErrInactiveToken
	}
	t.rot = &rotation{}
	return nil
}

// add holds the new access or refresh token of the rotation (one of each,
// same family); false when there is no rotation to add it to.
func (t *RefreshTx) add(table string, args []any, requestID string) bool {
	if t.rot == nil || requestID != t.row.r.ID {
		return false
	}
	switch {
	case table == tableAccess && t.rot.access == nil:
		t.rot.access = args
	case table == tableRefresh && t.rot.refresh == nil:
		t.rot.refresh = args
	default:
		return false
	}
	return true
}

// inline reports whether the new access token can live in the new refresh
// token's row (access_inline): the refresh row names it and both rows
// would hold the same request and session (fosite stores one requester
// under both signatures), so the access row would repeat the refresh row
// but for its key and expiry. Its expiry is in the session, where fosite
// and the bearer check read it; the row's expires_at is only for garbage
// collection, and the refresh token outlives its access token.
func (r *rotation) inline() bool {
	if r.access == nil || r.refresh == nil || len(r.refresh) != len(r.access)+1 {
		return false
	}
	if r.refresh[len(r.access)] != r.access[0] { // access_token_signature
		return false
	}
	// signature (0) and expires_at (last) differ; everything between must not.
	return reflect.DeepEqual(r.access[1:len(r.access)-1], r.refresh[1:len(r.access)-1])
}

// rotationStatement is the one statement that writes the rotation; it
// returns whether the presented token was rotated.
func (t *RefreshTx) rotationStatement(response []byte) (string, []any) {
	// The old access token: inline, it dies with the row's active flag;
	// otherwise it goes by primary key when the row names it: every access
	// token of a family is issued together with a refresh token that names
	// it (code exchange, password grant, rotation), and each rotation
	// deletes the one named by the token it uses, so that is the family's
	// only access token. By request_id the DELETE would visit every dead row
	// the family left since the last vacuum.
	args := []any{t.key, response, t.row.r.ID}
	sql := `WITH used AS (
			UPDATE oauth2_refresh SET active = false, first_used_at = clock_timestamp(), rotated_response = $2
			WHERE signature = $1 AND active RETURNING 1
		), family AS (
			UPDATE oauth2_refresh SET active = false
			WHERE request_id = $3 AND active AND signature <> $1 AND EXISTS (SELECT 1 FROM used)
		)`
	switch {
	case t.accessKey == "":
		sql += `, dropped AS (
			DELETE FROM oauth2_access WHERE request_id = $3 AND EXISTS (SELECT 1 FROM used))`
	case !t.accessInline:
		args = append(args, t.accessKey)
		sql += `, dropped AS (
			DELETE FROM oauth2_access WHERE signature = $4 AND EXISTS (SELECT 1 FROM used))`
	}
	// The new rows: same snapshot as the UPDATEs above, so the family
	// UPDATE cannot see (and deactivate) the refresh token inserted here.
	inline := t.rot.inline()
	if t.rot.access != nil && !inline {
		sql += `, new_access AS (
			INSERT INTO oauth2_access (` + insertColumns + `) SELECT ` + storage.Params(len(args), len(insertTypes()), insertTypes()...) + `
			WHERE EXISTS (SELECT 1 FROM used))`
		args = append(args, t.rot.access...)
	}
	if t.rot.refresh != nil {
		sql += `, new_refresh AS (
			INSERT INTO oauth2_refresh (` + insertColumns + `, access_token_signature, access_inline) SELECT ` +
			storage.Params(len(args), len(insertTypes())+1, append(insertTypes(), "text")...) + `, ` + strconv.FormatBool(inline) + `
			WHERE EXISTS (SELECT 1 FROM used))`
		args = append(args, t.rot.refresh...)
	}
	sql += ` SELECT EXISTS (SELECT 1 FROM used)`
	return sql, args
}

// refreshConn runs a RefreshTx's other statements (fosite's reuse
// handling) on its connection; it refuses once a rotation is held.
type refreshConn struct{ t *RefreshTx }

func (c refreshConn) ready() error {
	switch {
	case c.t.conn == nil:
		return pgx.ErrTxClosed
	case c.t.rot != nil:
		return errRotationPending
	}
	return nil
}

func (c refreshConn) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := c.ready(); err != nil {
		return pgconn.CommandTag{}, err
	}
	return c.t.conn.Exec(ctx, sql, args...)
}

func (c refreshConn) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := c.ready(); err != nil {
		return nil, err
	}
	return c.t.conn.Query(ctx, sql, args...)
}

func (c refreshConn) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := c.ready(); err != nil {
		return errRow{err}
	}
	return c.t.conn.QueryRow(ctx, sql, args...)
}

// Commit and Rollback belong to the RefreshTx: contexts from Context and
// Replay never own the transaction, so Store.Commit never reaches these.
func (c refreshConn) Commit(context.Context) error   { return errNotOwner }
func (c refreshConn) Rollback(context.Context) error { return errNotOwner }

var errNotOwner = errors.New("fositestore: a refresh transaction ends through RefreshTx.Commit or Rollback")

// insertTypes are the SQL types of insertColumns, for INSERT … SELECT,
// where Postgres cannot infer a parameter's type from its column.
func insertTypes() []string {
	return []string{"text", "text", "timestamptz", "text", "text[]", "text[]",
		"text[]", "text[]", "text", "jsonb", "text", "timestamptz"}
}

// errRow is a pgx.Row whose Scan fails with err.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
