package fositestore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ory/fosite"
)

// pendingRotation is the rotation of the refresh token a transaction holds
// FOR UPDATE (LockRefreshToken), with the pair fosite issues in its place,
// not yet written. Under that lock the guarded UPDATE cannot lose, so the
// store waits for SaveRotatedResponse and writes everything in one
// statement: the used row is rewritten once (inactive, first use and the
// saved response together) instead of twice, and a rotation costs one round
// trip instead of four. Any other query of the transaction, and Commit,
// first writes what is pending (pendingQuerier), so nothing can observe the
// difference.
type pendingRotation struct {
	key       string    // hashed signature of the presented refresh token
	requestID string    // its family
	usedAt    time.Time // first_used_at
	// accessKey is the hashed signature of the access token issued with the
	// presented refresh token, "" when the row does not name one.
	accessKey string
	access    []any  // insertColumns values of the new access token; nil until created
	refresh   []any  // insertColumns values + access_token_signature of the new refresh token
	blob      []byte // the saved response (SaveRotatedResponse); nil until saved
}

func (sh *txShared) hasPending() bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.pending != nil
}

// deferRotation records the rotation of the row this transaction holds
// locked, when it can be deferred: the lock is on exactly this token, the
// token was active when locked and nothing else is pending.
func (s *Store) deferRotation(ctx context.Context, requestID, signature string) bool {
	st, ok := ctx.Value(txKey{}).(*txState)
	if !ok {
		return false
	}
	key := hashKey(signature)
	st.shared.mu.Lock()
	defer st.shared.mu.Unlock()
	lr := st.shared.locked
	if lr == nil || lr.key != key || !lr.row.active || lr.row.r.ID != requestID || st.shared.pending != nil {
		return false
	}
	st.shared.pending = &pendingRotation{key: key, requestID: requestID, usedAt: s.clock(), accessKey: lr.accessKey}
	st.shared.locked = nil // the copy no longer describes the row
	return true
}

// deferCreate adds the new access or refresh token of a pending rotation
// (same family, one of each) instead of inserting it now.
func (s *Store) deferCreate(ctx context.Context, table string, args []any, requestID string) bool {
	st, ok := ctx.Value(txKey{}).(*txState)
	if !ok {
		return false
	}
	st.shared.mu.Lock()
	defer st.shared.mu.Unlock()
	p := st.shared.pending
	if p == nil || p.requestID != requestID {
		return false
	}
	switch {
	case table == tableAccess && p.access == nil:
		p.access = args
	case table == tableRefresh && p.refresh == nil:
		p.refresh = args
	default:
		return false
	}
	return true
}

// takePending removes and returns st's pending rotation, if any.
func (st *txState) takePending() *pendingRotation {
	st.shared.mu.Lock()
	defer st.shared.mu.Unlock()
	p := st.shared.pending
	st.shared.pending = nil
	return p
}

// flushPending writes st's pending rotation, if any, and reports
// ErrInactiveToken if the presented token was no longer active (impossible
// under the row lock, checked anyway).
func (s *Store) flushPending(ctx context.Context, st *txState) error {
	p := st.takePending()
	if p == nil {
		return nil
	}
	sql, args := p.statement()
	var rotated bool
	if err := st.tx.QueryRow(ctx, sql, args...).Scan(&rotated); err != nil {
		return mapErr("rotate refresh token", err)
	}
	if !rotated {
		return fosite.ErrInactiveToken
	}
	return nil
}

// statement is the one statement that writes p; it returns whether the
// presented token was rotated.
func (p *pendingRotation) statement() (string, []any) {
	// The old access token goes by primary key when the row names it:
	// every access token of a family is issued together with a refresh
	// token that names it (code exchange, password grant, rotation), and
	// each rotation deletes the one named by the token it uses, so that is
	// the family's only access token. By request_id the DELETE would visit
	// every dead row the family left since the last vacuum.
	args := []any{p.key, p.usedAt, p.requestID, p.blob}
	dropAccess := `request_id = $3`
	if p.accessKey != "" {
		args = append(args, p.accessKey)
		dropAccess = `signature = $5`
	}
	sql := `WITH used AS (
			UPDATE oauth2_refresh SET active = false, first_used_at = $2, rotated_response = $4
			WHERE signature = $1 AND active RETURNING 1
		), dropped AS (
			DELETE FROM oauth2_access WHERE ` + dropAccess + ` AND EXISTS (SELECT 1 FROM used)
		), family AS (
			UPDATE oauth2_refresh SET active = false
			WHERE request_id = $3 AND active AND signature <> $1 AND EXISTS (SELECT 1 FROM used)
		)`
	// The new rows: same snapshot as the UPDATEs above, so the family
	// UPDATE cannot see (and deactivate) the refresh token inserted here.
	if p.access != nil {
		sql += `, new_access AS (
			INSERT INTO oauth2_access (` + insertColumns + `) SELECT ` + castParams(len(args), insertTypes()) + `
			WHERE EXISTS (SELECT 1 FROM used))`
		args = append(args, p.access...)
	}
	if p.refresh != nil {
		sql += `, new_refresh AS (
			INSERT INTO oauth2_refresh (` + insertColumns + `, access_token_signature) SELECT ` +
			castParams(len(args), append(insertTypes(), "text")) + `
			WHERE EXISTS (SELECT 1 FROM used))`
		args = append(args, p.refresh...)
	}
	sql += ` SELECT EXISTS (SELECT 1 FROM used)`
	return sql, args
}

// insertTypes are the SQL types of insertColumns, for INSERT … SELECT,
// where Postgres cannot infer a parameter's type from its column.
func insertTypes() []string {
	return []string{"text", "text", "timestamptz", "text", "text[]", "text[]",
		"text[]", "text[]", "text", "jsonb", "text", "timestamptz"}
}

// castParams renders "$n+1::t1, $n+2::t2, …".
func castParams(n int, types []string) string {
	b := make([]byte, 0, 16*len(types))
	for i, t := range types {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, '$')
		b = appendInt(b, n+i+1)
		b = append(b, "::"...)
		b = append(b, t...)
	}
	return string(b)
}

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

// pendingQuerier is the transaction of a context with a pending rotation:
// it writes the rotation before the first statement it runs.
type pendingQuerier struct {
	s  *Store
	st *txState
}

func (q pendingQuerier) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := q.s.flushPending(ctx, q.st); err != nil {
		return pgconn.CommandTag{}, err
	}
	return q.st.tx.Exec(ctx, sql, args...)
}

func (q pendingQuerier) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := q.s.flushPending(ctx, q.st); err != nil {
		return nil, err
	}
	return q.st.tx.Query(ctx, sql, args...)
}

func (q pendingQuerier) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := q.s.flushPending(ctx, q.st); err != nil {
		return errRow{err}
	}
	return q.st.tx.QueryRow(ctx, sql, args...)
}

// errRow is a pgx.Row whose Scan fails with err.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
