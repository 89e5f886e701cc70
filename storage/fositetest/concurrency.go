package fositetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
		{"RefreshProtocol/OneRotationSameResponse", func(t *testing.T, ns NewStoreFunc) { concurrentRefresh(t, ns, false) }},
		{"RefreshProtocol/OneRotationSameResponse/BeginRefresh", func(t *testing.T, ns NewStoreFunc) { concurrentRefresh(t, ns, true) }},
		{"SetClientAssertionJWT/OneWinner", concurrentJTI},
		{"RevokeSubject/DuringRefresh", revokeDuringRefresh},
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
	f := newFixture(t, newStore, 0)
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
	f := newFixture(t, newStore, 0)
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

// concurrentRefresh: 20 requests present one refresh token at once, each in
// its own READ COMMITTED transaction running the fositestore protocol. The
// row lock queues them: exactly one rotates and issues, the other 19 read the
// very blob it saved; after the window the token is plain reuse. With
// beginRefresh each worker begins and locks in one call (BeginRefresh), as
// the token endpoint does.
func concurrentRefresh(t *testing.T, newStore NewStoreFunc, beginRefresh bool) {
	f := newFixture(t, newStore, window)
	sig, req := RandomString(), f.request("alice")
	mustNil(t, "create", f.st.CreateRefreshTokenSession(f.ctx, sig, "", req))

	type outcome struct {
		rotated bool
		blob    []byte
	}
	outcomes := make([]outcome, workers)
	work := func(ctx context.Context, i int, rs fositestore.RefreshState) error {
		switch {
		case f.st.Replayable(rs):
			// What fosite's NewAccessRequest does first under the marker.
			got, err := f.st.GetRefreshTokenSession(fositestore.WithinReuseWindow(ctx), sig, EmptySession())
			if err != nil {
				return fmt.Errorf("get under marker: %w", err)
			}
			if got.GetClient().GetID() != rs.ClientID {
				return fmt.Errorf("client %q, locked row says %q", got.GetClient().GetID(), rs.ClientID)
			}
			outcomes[i] = outcome{blob: rs.RotatedResponse}
		case rs.Active:
			if _, err := f.st.GetRefreshTokenSession(ctx, sig, EmptySession()); err != nil {
				return fmt.Errorf("get: %w", err)
			}
			// Stand-in for fosite minting tokens: the others must wait on
			// the lock, not slip past it.
			time.Sleep(50 * time.Millisecond)
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
			if err := f.st.SaveRotatedResponse(ctx, sig, blob); err != nil {
				return fmt.Errorf("save: %w", err)
			}
			outcomes[i] = outcome{rotated: true, blob: blob}
		default:
			return fmt.Errorf("neither active nor replayable: %+v", rs)
		}
		return nil
	}
	var errs []error
	if beginRefresh {
		errs = race(func(i int) (err error) {
			ctx, rs, err := f.st.BeginRefresh(context.Background(), sig)
			if err != nil {
				return err
			}
			defer func() {
				if err != nil {
					_ = f.st.Rollback(ctx)
				}
			}()
			if err := work(ctx, i, rs); err != nil {
				return err
			}
			return f.st.Commit(ctx)
		})
	} else {
		errs = raceTx(f.st, func(ctx context.Context, i int) error {
			rs, err := f.st.LockRefreshToken(ctx, sig)
			if err != nil {
				return err
			}
			return work(ctx, i, rs)
		})
	}
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

	f.clock.Advance(window)
	got, err := f.st.GetRefreshTokenSession(fositestore.WithinReuseWindow(context.Background()), sig, EmptySession())
	mustErr(t, "get after window", err, fosite.ErrInactiveToken)
	if got == nil || got.GetID() != req.ID {
		t.Fatalf("requester after window: %v", got)
	}
}

// revokeDuringRefresh: a user is disabled while one of their refreshes is
// in flight (it holds the row lock and is about to commit a new pair). The
// new pair must not survive the revocation.
func revokeDuringRefresh(t *testing.T, newStore NewStoreFunc) {
	f := newFixture(t, newStore, window)
	sig, req := RandomString(), f.request("alice")
	mustNil(t, "create", f.st.CreateRefreshTokenSession(f.ctx, sig, "", req))

	ctx, err := f.st.BeginTXWith(f.ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	mustNil(t, "begin", err)
	defer f.st.Rollback(ctx)
	_, err = f.st.LockRefreshToken(ctx, sig)
	mustNil(t, "lock", err)
	mustNil(t, "rotate", f.st.RotateRefreshToken(ctx, req.ID, sig))
	at, rt := RandomString(), RandomString()
	mustNil(t, "new access", f.st.CreateAccessTokenSession(ctx, at, req))
	mustNil(t, "new refresh", f.st.CreateRefreshTokenSession(ctx, rt, at, req))
	mustNil(t, "save", f.st.SaveRotatedResponse(ctx, sig, []byte("blob")))

	revoked := make(chan error, 1)
	go func() { revoked <- f.st.RevokeSubject(f.ctx, "alice") }()
	// Let RevokeSubject reach the locked row and wait on it.
	time.Sleep(200 * time.Millisecond)
	mustNil(t, "commit refresh", f.st.Commit(ctx))
	mustNil(t, "revoke", <-revoked)

	mustErr(t, "new refresh token", errOnly(f.st.GetRefreshTokenSession(f.ctx, rt, nil)), fosite.ErrInactiveToken)
	mustErr(t, "new access token", errOnly(f.st.GetAccessTokenSession(f.ctx, at, nil)), fosite.ErrNotFound)
	mustErr(t, "old token not replayable", errOnly(f.st.GetRefreshTokenSession(fositestore.WithinReuseWindow(f.ctx), sig, nil)), fosite.ErrInactiveToken)
}
