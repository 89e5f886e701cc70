package fositetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ory/fosite"

	"github.com/authd/authd/storage/fositestore"
)

// workers is how many goroutines race in each concurrency case.
const workers = 20

// RunConcurrencyTests checks the "exactly one winner" guarantees with many
// goroutines on one row. Run it with -race.
func RunConcurrencyTests(t *testing.T, newStore NewStoreFunc) {
	for _, tc := range []testCase{
		{"InvalidateAuthorizeCode/OneWinner", concurrentInvalidate},
		{"RefreshTx/OneRotationSameResponse", concurrentRefresh},
		{"SetClientAssertionJWT/OneWinner", concurrentJTI},
		{"RefreshFamily/RevokedDuringRotation", revokeDuringRotation},
		{"RefreshFamily/RotationRacesRevocation", rotationRacesRevocation},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore) })
	}
}

// race runs fn in workers goroutines released at once and returns their
// errors.
func race(fn func(i int) error) []error {
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, workers)
	)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// raceTx is race with each worker in its own READ COMMITTED transaction,
// begun before any worker runs fn so that they really overlap instead of
// queueing on connection set-up. READ COMMITTED is the weakest level
// authd uses: a missing guard shows up as several winners, not as
// serialization failures that would hide it.
func raceTx(st *fositestore.Store, fn func(ctx context.Context, i int) error) []error {
	var begun sync.WaitGroup
	begun.Add(workers)
	return race(func(i int) (err error) {
		ctx, err := st.BeginTXWith(context.Background(), pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
		begun.Done()
		if err != nil {
			return err
		}
		begun.Wait()
		defer func() {
			if err != nil {
				_ = st.Rollback(ctx)
			}
		}()
		if err := fn(ctx, i); err != nil {
			return err
		}
		return st.Commit(ctx)
	})
}

func concurrentInvalidate(t *testing.T, newStore NewStoreFunc) {
	f := newFixture(t, newStore)
	code := RandomString()
	mustNil(t, "create", f.st.CreateAuthorizeCodeSession(f.ctx, code, f.request("alice")))
	errs := raceTx(f.st, func(ctx context.Context, _ int) error { return f.st.InvalidateAuthorizeCodeSession(ctx, code) })
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, fosite.ErrInvalidatedAuthorizeCode), errors.Is(err, fosite.ErrSerializationFailure):
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d goroutines invalidated the code, want exactly 1", wins)
	}
}

func concurrentJTI(t *testing.T, newStore NewStoreFunc) {
	f := newFixture(t, newStore)
	exp := f.clock.Now().Add(5 * time.Minute)
	errs := raceTx(f.st, func(ctx context.Context, _ int) error { return f.st.SetClientAssertionJWT(ctx, "jti-race", exp) })
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, fosite.ErrJTIKnown):
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d goroutines recorded the JTI, want exactly 1", wins)
	}
}

// concurrentRefresh: 20 requests present one refresh token at once, each
// in its own RefreshTx. The family lock queues them: exactly one rotates and
// issues, and every other one then reads the token as used, its successor
// unused and the very response the winner saved.
func concurrentRefresh(t *testing.T, newStore NewStoreFunc) {
	f := newFixture(t, newStore)
	sig, req := RandomString(), f.request("alice")
	mustNil(t, "create", f.st.CreateRefreshTokenSession(f.ctx, sig, "", req))

	type outcome struct {
		rotated bool
		blob    []byte
	}
	outcomes := make([]outcome, workers)
	errs := race(func(i int) error {
		tx, err := f.st.BeginRefresh(context.Background(), sig)
		if err != nil {
			return err
		}
		defer tx.Rollback(context.Background())
		ctx := tx.Context(context.Background())
		switch rs := tx.State(); {
		case rs.Active:
			if _, err := f.st.GetRefreshTokenSession(ctx, sig, EmptySession()); err != nil {
				return fmt.Errorf("get: %w", err)
			}
			if err := f.st.RotateRefreshToken(ctx, req.ID, sig); err != nil {
				return fmt.Errorf("rotate: %w", err)
			}
			at, rt := RandomString(), RandomString()
			if err := f.st.CreateAccessTokenSession(ctx, at, req); err != nil {
				return err
			}
			if err := f.st.CreateRefreshTokenSession(ctx, rt, at, req); err != nil {
				return err
			}
			blob := []byte(fmt.Sprintf("response of worker %d: %s %s", i, at, rt))
			outcomes[i] = outcome{rotated: true, blob: blob}
			return tx.Commit(context.Background(), blob)
		case rs.Used && rs.SuccessorActive:
			got, err := f.st.GetRefreshTokenSession(tx.Replay(context.Background()), sig, EmptySession())
			if err != nil {
				return fmt.Errorf("get in replay mode: %w", err)
			}
			if got.GetClient().GetID() != rs.ClientID {
				return fmt.Errorf("client %q, locked row says %q", got.GetClient().GetID(), rs.ClientID)
			}
			outcomes[i] = outcome{blob: rs.Response}
			return tx.Commit(context.Background(), nil)
		default:
			return fmt.Errorf("neither active nor replayable: %+v", rs)
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("worker %d: %v", i, err)
		}
	}
	var rotations int
	var winner []byte
	for _, o := range outcomes {
		if o.rotated {
			rotations++
			winner = o.blob
		}
	}
	if rotations != 1 {
		t.Fatalf("%d rotations, want exactly 1", rotations)
	}
	for i, o := range outcomes {
		if !bytes.Equal(o.blob, winner) {
			t.Errorf("worker %d got %q, want the winner's %q", i, o.blob, winner)
		}
	}
	mustAlive(t, f, req.ID, 1)
}

// mustAlive fails unless the family has exactly want active refresh tokens
// (and, when want is 0, no access token).
func mustAlive(t *testing.T, f *fixture, family string, want int) {
	t.Helper()
	var rts, ats int
	mustNil(t, "count", f.st.Querier(f.ctx).QueryRow(f.ctx, `SELECT
		(SELECT count(*) FROM oauth2_refresh WHERE request_id = $1 AND active),
		(SELECT count(*) FROM oauth2_access WHERE request_id = $1)`, family).Scan(&rts, &ats))
	if rts != want || (want == 0 && ats != 0) {
		t.Fatalf("family %s: %d active refresh tokens and %d access tokens, want %d and none if dead", family, rts, ats, want)
	}
}

// waitForFamilyLockWaiter returns once some transaction waits for a family
// lock (pg_locks), so a test knows a revocation is queued behind the
// rotation it holds. Polling a condition, not sleeping for a guess.
func waitForFamilyLockWaiter(t *testing.T, f *fixture) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		mustNil(t, "pg_locks", f.st.Querier(f.ctx).QueryRow(f.ctx, `SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND classid = 1919316840 AND NOT granted`).Scan(&n))
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no transaction waits for the family lock: the revocation did not queue behind the rotation")
		}
		runtime.Gosched()
	}
}

// revokers are the ways a family dies, each run while a rotation of the
// family is in flight.
var revokers = []struct {
	name   string
	revoke func(f *fixture, req *fosite.Request, used string) error
}{
	{"RevokeRefreshToken", func(f *fixture, req *fosite.Request, _ string) error {
		// RFC 7009: fosite calls both, in this order.
		if err := f.st.RevokeRefreshToken(f.ctx, req.ID); err != nil {
			return err
		}
		return f.st.RevokeAccessToken(f.ctx, req.ID)
	}},
	{"RevokeSubject", func(f *fixture, _ *fosite.Request, _ string) error {
		return f.st.RevokeSubject(f.ctx, "alice")
	}},
	{"ReuseDetection", func(f *fixture, req *fosite.Request, used string) error {
		// An older token of the family presented again: what fosite does
		// in the RefreshTx of the reused token.
		tx, err := f.st.BeginRefresh(f.ctx, used)
		if err != nil {
			return err
		}
		defer tx.Rollback(f.ctx)
		ctx := tx.Context(f.ctx)
		if _, err := f.st.GetRefreshTokenSession(ctx, used, EmptySession()); !errors.Is(err, fosite.ErrInactiveToken) {
			return fmt.Errorf("reused token: %v, want ErrInactiveToken", err)
		}
		if err := f.st.DeleteRefreshTokenSession(ctx, used); err != nil {
			return err
		}
		if err := f.st.RevokeRefreshToken(ctx, req.ID); err != nil {
			return err
		}
		if err := f.st.RevokeAccessToken(ctx, req.ID); err != nil {
			return err
		}
		return tx.Commit(f.ctx, nil)
	}},
}

// revokeDuringRotation: a family is revoked (each way a family dies) while
// a rotation of it is in flight, holding the family's lock with a new pair
// about to be committed. The revocation waits, and the new pair does not
// survive it.
func revokeDuringRotation(t *testing.T, newStore NewStoreFunc) {
	for _, rv := range revokers {
		t.Run(rv.name, func(t *testing.T) {
			f := newFixture(t, newStore)
			used, req := RandomString(), f.request("alice")
			mustNil(t, "create", f.st.CreateRefreshTokenSession(f.ctx, used, "", req))
			sig := f.rotateAndSave(used, req, []byte("blob"))

			tx, ctx := f.protocolTx(sig)
			mustNil(t, "rotate", f.st.RotateRefreshToken(ctx, req.ID, sig))
			at, rt := RandomString(), RandomString()
			mustNil(t, "new access", f.st.CreateAccessTokenSession(ctx, at, req))
			mustNil(t, "new refresh", f.st.CreateRefreshTokenSession(ctx, rt, at, req))

			revoked := make(chan error, 1)
			go func() { revoked <- rv.revoke(f, req, used) }()
			waitForFamilyLockWaiter(t, f)
			mustNil(t, "commit rotation", tx.Commit(f.ctx, []byte("blob 2")))
			mustNil(t, "revoke", <-revoked)

			mustErr(t, "new refresh token", errOnly(f.st.GetRefreshTokenSession(f.ctx, rt, nil)), fosite.ErrInactiveToken)
			mustErr(t, "new access token", errOnly(f.st.GetAccessTokenSession(f.ctx, at, nil)), fosite.ErrNotFound)
			if rs := f.state(sig); rs.Response != nil || rs.SuccessorActive {
				t.Fatalf("the rotated token is still replayable: %+v", rs)
			}
			mustAlive(t, f, req.ID, 0)
		})
	}
}

// rotationRacesRevocation: rounds of one rotation and one revocation of the
// same family released at once, in no forced order. Whichever wins, the
// family is dead afterwards: no active refresh token, no access token.
func rotationRacesRevocation(t *testing.T, newStore NewStoreFunc) {
	const rounds = 15
	for _, rv := range revokers {
		t.Run(rv.name, func(t *testing.T) {
			f := newFixture(t, newStore)
			for range rounds {
				used, req := RandomString(), f.request("alice")
				mustNil(t, "create", f.st.CreateRefreshTokenSession(f.ctx, used, "", req))
				sig := f.rotateAndSave(used, req, []byte("blob"))
				var wg sync.WaitGroup
				start := make(chan struct{})
				errs := make([]error, 2)
				wg.Add(2)
				go func() {
					defer wg.Done()
					<-start
					errs[0] = rotateIfActive(f, sig, req)
				}()
				go func() {
					defer wg.Done()
					<-start
					errs[1] = rv.revoke(f, req, used)
				}()
				close(start)
				wg.Wait()
				mustNil(t, "rotation", errs[0])
				mustNil(t, "revocation", errs[1])
				mustAlive(t, f, req.ID, 0)
			}
		})
	}
}

// rotateIfActive runs one refresh of sig: a rotation when the token is
// still active, nothing when a revocation came first.
func rotateIfActive(f *fixture, sig string, req *fosite.Request) error {
	tx, err := f.st.BeginRefresh(context.Background(), sig)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	if !tx.State().Active {
		return tx.Commit(context.Background(), nil)
	}
	ctx := tx.Context(context.Background())
	if err := f.st.RotateRefreshToken(ctx, req.ID, sig); err != nil {
		return err
	}
	at, rt := RandomString(), RandomString()
	if err := f.st.CreateAccessTokenSession(ctx, at, req); err != nil {
		return err
	}
	if err := f.st.CreateRefreshTokenSession(ctx, rt, at, req); err != nil {
		return err
	}
	return tx.Commit(context.Background(), []byte("response"))
}
