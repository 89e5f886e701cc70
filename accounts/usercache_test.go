package accounts_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/storage/storagetest"
)

// propagation bounds how long a change on one replica may take to reach
// another replica's user cache. It is below the cache's 2 s TTL on purpose:
// a change seen only because an entry expired fails these tests.
const propagation = time.Second

// watchingService returns a Service on pool whose user watcher runs for the
// test's lifetime and is listening when this returns.
func watchingService(t *testing.T, pool *pgxpool.Pool) *accounts.Service {
	t.Helper()
	s := accounts.New(pool, mustHasher(t), zap.NewNop(), accounts.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.WatchUsers(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-s.UserCacheReady():
	case <-time.After(10 * time.Second):
		t.Fatal("user watcher did not start listening")
	}
	return s
}

func mustHasher(t *testing.T) *accounts.PasswordHasher {
	t.Helper()
	h, err := accounts.NewPasswordHasher("bcrypt", 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// twoReplicas returns two watching Services with their own pools on one
// fresh database, and that database's first pool.
func twoReplicas(t *testing.T) (a, b *accounts.Service, pool *pgxpool.Pool) {
	t.Helper()
	db := storagetest.NewDB(t)
	poolB, err := pgxpool.New(context.Background(), db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(poolB.Close)
	return watchingService(t, db.Pool), watchingService(t, poolB), db.Pool
}

func mustUser(t *testing.T, s *accounts.Service, email string) *accounts.User {
	t.Helper()
	u, err := s.CreateUser(context.Background(), accounts.NewUser{Email: email, Password: "correct horse battery staple"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// accessState is CachedAccess's answer reduced to what tests compare.
type accessState struct {
	found, disabled, admin bool
}

func stateOf(t *testing.T, s *accounts.Service, id string) accessState {
	t.Helper()
	a, err := s.CachedAccess(context.Background(), id)
	if errors.Is(err, accounts.ErrNotFound) {
		return accessState{}
	}
	if err != nil {
		t.Fatalf("CachedAccess(%s): %v", id, err)
	}
	return accessState{found: true, disabled: a.Disabled, admin: slices.Contains(a.Roles, "admin")}
}

// waitState polls s until it reports want, failing after propagation.
func waitState(t *testing.T, s *accounts.Service, id string, want accessState) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := stateOf(t, s, id)
		if got == want {
			return time.Since(start)
		}
		if time.Since(start) > propagation {
			t.Fatalf("user %s: still %+v after %v, want %+v", id, got, propagation, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// mustBeCached waits until s serves id from memory: two reads return the
// same value. (A notification still in flight, e.g. of the user's creation,
// may drop the first copies.)
func mustBeCached(t *testing.T, s *accounts.Service, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		first, err := s.CachedAccess(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := s.CachedAccess(context.Background(), id); again == first {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("CachedAccess never served from memory")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Both replicas cache; every kind of change made on A is visible on A as
// soon as the call returns, and on B through NOTIFY.
func TestUserCache_ChangeSeenAtOnceHereAndSoonOnOtherReplica(t *testing.T) {
	a, b, poolA := twoReplicas(t)
	ctx := context.Background()
	u := mustUser(t, a, "cache@example.com")

	mustBeCached(t, b, u.ID)

	steps := []struct {
		name   string
		change func() error
		want   accessState
	}{
		{"AssignRole", func() error { _, err := a.AssignRole(ctx, adminOrigin, u.ID, "admin"); return err },
			accessState{found: true, admin: true}},
		{"UnassignRole", func() error { _, err := a.UnassignRole(ctx, adminOrigin, u.ID, "admin", false); return err },
			accessState{found: true}},
		{"AddRole", func() error { return a.AddRole(ctx, u.ID, "admin") }, accessState{found: true, admin: true}},
		{"RemoveRole", func() error { _, err := a.RemoveRole(ctx, poolA, u.ID, "admin"); return err },
			accessState{found: true}},
		{"DisableByUpperCaseID", func() error {
			_, err := a.SetDisabled(ctx, adminOrigin, strings.ToUpper(u.ID), true, false)
			return err
		},
			accessState{found: true, disabled: true}},
		{"Enable", func() error { _, err := a.SetDisabled(ctx, adminOrigin, u.ID, false, false); return err },
			accessState{found: true}},
		{"Delete", func() error { _, err := a.DeleteUser(ctx, adminOrigin, u.ID); return err }, accessState{}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			// Both caches hold the state before the change.
			stateOf(t, a, u.ID)
			stateOf(t, b, u.ID)
			if err := st.change(); err != nil {
				t.Fatal(err)
			}
			if got := stateOf(t, a, u.ID); got != st.want {
				t.Fatalf("replica A right after its own change: %+v, want %+v", got, st.want)
			}
			t.Logf("seen on B after %v", waitState(t, b, u.ID, st.want))
		})
	}
}

// Changes made behind the service's back (plain SQL, another tool) reach a
// watching cache through the triggers; a service without a watcher never
// caches.
func TestUserCache_SQLChangesSeenAndUnwatchedReadsThrough(t *testing.T) {
	db := storagetest.NewDB(t)
	watched := watchingService(t, db.Pool)
	unwatched := accounts.New(db.Pool, nil, zap.NewNop(), accounts.Config{})
	ctx := context.Background()
	u := mustUser(t, watched, "sql@example.com")
	other := mustUser(t, watched, "other@example.com")

	steps := []struct {
		name, sql string
		want      accessState
	}{
		{"UpdateDisabled", `UPDATE users SET disabled = true WHERE id = $1`, accessState{found: true, disabled: true}},
		{"UpdateEnabled", `UPDATE users SET disabled = false WHERE id = $1`, accessState{found: true}},
		{"InsertRole", `INSERT INTO user_roles (user_id, role) VALUES ($1, 'admin')`, accessState{found: true, admin: true}},
		{"MoveRoleToOtherUser", `UPDATE user_roles SET user_id = '` + other.ID + `' WHERE user_id = $1 AND role = 'admin'`,
			accessState{found: true}},
		{"MoveRoleBack", `UPDATE user_roles SET user_id = $1 WHERE user_id = '` + other.ID + `' AND role = 'admin'`,
			accessState{found: true, admin: true}},
		{"DeleteRole", `DELETE FROM user_roles WHERE user_id = $1 AND role = 'admin'`, accessState{found: true}},
		{"AddAgain", `INSERT INTO user_roles (user_id, role) VALUES ($1, 'admin')`, accessState{found: true, admin: true}},
		{"TruncateRolesCascade", `TRUNCATE roles CASCADE -- $1`, accessState{found: true}},
		{"TruncateUsersCascade", `TRUNCATE users CASCADE -- $1`, accessState{}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			stateOf(t, watched, u.ID)
			var err error
			if st.sql[:8] == "TRUNCATE" {
				_, err = db.Pool.Exec(ctx, st.sql[:len(st.sql)-6])
			} else {
				_, err = db.Pool.Exec(ctx, st.sql, u.ID)
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := stateOf(t, unwatched, u.ID); got != st.want {
				t.Fatalf("unwatched service: %+v, want %+v at once", got, st.want)
			}
			t.Logf("seen by the watching service after %v", waitState(t, watched, u.ID, st.want))
		})
	}
}

// A password, email or profile change announces nothing (only the columns
// the cache holds do), so busy logins and re-hashes never empty the cache.
// A listener of the test's own sees every notification in commit order: the
// marker sent last must be the first to arrive.
func TestUserCache_PasswordChangeAnnouncesNothing(t *testing.T) {
	db := storagetest.NewDB(t)
	s := accounts.New(db.Pool, mustHasher(t), zap.NewNop(), accounts.Config{})
	ctx := context.Background()
	u := mustUser(t, s, "quiet@example.com")

	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `LISTEN `+accounts.UsersChannel); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPassword(ctx, db.Pool, u.ID, "another long passphrase"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE users SET name = 'Q', email_verified = true WHERE id = $1`, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `SELECT pg_notify($1, 'marker')`, accounts.UsersChannel); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := conn.WaitForNotification(wctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.Payload != "marker" {
		t.Errorf("first notification %q, want the marker: a password or profile change was announced", n.Payload)
	}
}

// Readers hammer both replicas while A toggles a role: a read that started
// before a change is never cached over it, so after each change A answers
// the new state at once and B within a notification's latency.
func TestUserCache_ConcurrentReadersNeverCacheOverAChange(t *testing.T) {
	a, b, _ := twoReplicas(t)
	ctx := context.Background()
	u := mustUser(t, a, "race@example.com")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 8 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.CachedAccess(ctx, u.ID); err != nil {
					t.Errorf("reader: %v", err)
					return
				}
				// Leave the 2-core machine to the listener and the writer
				// (the pause only spaces the reads; it orders nothing).
				time.Sleep(100 * time.Microsecond)
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()

	for i := range 40 {
		want := accessState{found: true, admin: i%2 == 0}
		var err error
		if want.admin {
			_, err = a.AssignRole(ctx, adminOrigin, u.ID, "admin")
		} else {
			_, err = a.UnassignRole(ctx, adminOrigin, u.ID, "admin", false)
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := stateOf(t, a, u.ID); got != want {
			t.Fatalf("change %d: replica A answers %+v right after its own change, want %+v", i, got, want)
		}
		waitState(t, b, u.ID, want)
	}
}

// When the listener's connection is lost, the cache stops answering from
// memory (a change it cannot hear about is seen at once), and it resumes
// caching after reconnecting.
func TestUserCache_ListenerLossReadsThrough(t *testing.T) {
	db := storagetest.NewDB(t)
	s := watchingService(t, db.Pool)
	ctx := context.Background()
	u := mustUser(t, s, "lost@example.com")
	mustBeCached(t, s, u.ID)

	var killed int
	if err := db.Pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = 'authd user cache' AND datname = current_database()`).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d listener connections, want 1", killed)
	}
	// Until it reconnects (after a backoff of 100 ms), every read goes to
	// the database: three reads in a row return three different copies.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var seen [3]*accounts.Access
		for i := range seen {
			a, err := s.CachedAccess(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			seen[i] = a
		}
		if seen[0] != seen[1] && seen[1] != seen[2] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cache kept answering from memory after its listener was lost")
		}
		time.Sleep(time.Millisecond)
	}
	// Committed while the listener may be down: no notification reaches it.
	if _, err := db.Pool.Exec(ctx, `UPDATE users SET disabled = true WHERE id = $1`, u.ID); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, u.ID, accessState{found: true, disabled: true})

	// Back to caching after the reconnection.
	mustBeCached(t, s, u.ID)
	if _, err := db.Pool.Exec(ctx, `UPDATE users SET disabled = false WHERE id = $1`, u.ID); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, u.ID, accessState{found: true})
}
