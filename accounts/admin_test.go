package accounts_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/audit"
)

var adminOrigin = audit.Event{ActorType: audit.ActorAdmin, ActorID: "test-admin"}

func mustCreate(t *testing.T, svc *accounts.Service, email string) *accounts.User {
	t.Helper()
	u, err := svc.CreateUser(context.Background(), accounts.NewUser{Email: email, Password: "a-long-enough-passw0rd"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Users created in one statement share created_at: the keyset's id
// tie-breaker must still page through each exactly once.
func TestService_ListUsersKeysetWithTiedTimestamps(t *testing.T) {
	svc, pool := MustServiceCfg(t, accounts.Config{})
	ctx := context.Background()
	want := map[string]bool{}
	for i := range 7 {
		want[mustCreate(t, svc, fmt.Sprintf("u%d@example.com", i)).ID] = true
	}
	if _, err := pool.Exec(ctx, `UPDATE users SET created_at = '2026-01-01T00:00:00Z'`); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	f := accounts.UserFilter{Limit: 2}
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		page, err := svc.ListUsers(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range page.Items {
			if seen[u.ID] {
				t.Fatalf("user %s listed twice", u.ID)
			}
			seen[u.ID] = true
		}
		if page.NextCursor == nil {
			break
		}
		f.Cursor = *page.NextCursor
	}
	if len(seen) != len(want) {
		t.Fatalf("listed %d users, want %d", len(seen), len(want))
	}
	if _, err := svc.ListUsers(ctx, accounts.UserFilter{Cursor: "bm9wZQ"}); !errors.Is(err, accounts.ErrBadCursor) {
		t.Fatalf("garbage cursor: %v", err)
	}
}

// A role is deleted only while nobody holds it, even with assignments racing
// the delete: either the delete wins and no assignment lands, or it fails
// with ErrRoleInUse.
func TestService_DeleteRoleRacesAssignments(t *testing.T) {
	svc, pool := MustServiceCfg(t, accounts.Config{})
	ctx := context.Background()
	if _, err := svc.CreateRole(ctx, adminOrigin, "temp", ""); err != nil {
		t.Fatal(err)
	}
	var users []*accounts.User
	for i := range 8 {
		users = append(users, mustCreate(t, svc, fmt.Sprintf("r%d@example.com", i)))
	}
	var wg sync.WaitGroup
	var delErr error
	assignErrs := make([]error, len(users))
	wg.Add(1)
	go func() { defer wg.Done(); delErr = svc.DeleteRole(ctx, adminOrigin, "temp") }()
	for i, u := range users {
		wg.Add(1)
		go func() { defer wg.Done(); _, assignErrs[i] = svc.AssignRole(ctx, adminOrigin, u.ID, "temp") }()
	}
	wg.Wait()
	held := countRows(t, pool, `SELECT count(*) FROM user_roles WHERE role = 'temp'`)
	roleRows := countRows(t, pool, `SELECT count(*) FROM roles WHERE name = 'temp'`)
	switch {
	case delErr == nil:
		if held != 0 || roleRows != 0 {
			t.Fatalf("role deleted but %d users hold it", held)
		}
		for _, err := range assignErrs {
			if err != nil && !errors.Is(err, accounts.ErrUnknownRole) {
				t.Fatalf("assignment after delete: %v", err)
			}
		}
	case errors.Is(delErr, accounts.ErrRoleInUse):
		if held == 0 || roleRows != 1 {
			t.Fatalf("delete refused as in use, but %d holders and %d roles", held, roleRows)
		}
	default:
		t.Fatalf("delete: %v", delErr)
	}
	events := countRows(t, pool, `SELECT count(*) FROM audit_events WHERE type IN ('role.deleted', 'user.role_added')`)
	wantEvents := held
	if delErr == nil {
		wantEvents = 1
		for _, err := range assignErrs {
			if err == nil {
				wantEvents++
			}
		}
	}
	if events != wantEvents {
		t.Fatalf("%d audit events for %d effective changes", events, wantEvents)
	}
}

// revokerFunc is a function-field fake of accounts.TokenRevoker.
type revokerFunc func(ctx context.Context, userID string) error

func (f revokerFunc) RevokeSubject(ctx context.Context, userID string) error { return f(ctx, userID) }

var _ accounts.TokenRevoker = revokerFunc(nil)

// Tokens are revoked only once the change is committed, so a refresh racing
// it cannot slip a new token in between (refresh reads the change live).
func TestService_RevocationFollowsTheCommit(t *testing.T) {
	var svc *accounts.Service
	var calls []string
	var sawDisabled, sawRoleGone []bool
	svc, _ = MustServiceCfg(t, accounts.Config{Revoker: revokerFunc(func(ctx context.Context, id string) error {
		calls = append(calls, id)
		u, err := svc.User(ctx, id) // another connection: sees only committed state
		if err != nil {
			return err
		}
		sawDisabled = append(sawDisabled, u.Disabled)
		has := false
		for _, r := range u.Roles {
			has = has || r == "admin"
		}
		sawRoleGone = append(sawRoleGone, !has)
		return nil
	})})
	ctx := context.Background()
	u := mustCreate(t, svc, "x@example.com")
	if _, err := svc.AssignRole(ctx, adminOrigin, u.ID, "admin"); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 0 {
		t.Fatal("adding a role revoked tokens")
	}
	if _, err := svc.UnassignRole(ctx, adminOrigin, u.ID, "admin", true); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || !sawRoleGone[0] {
		t.Fatalf("role removal: revocations %v, role gone when revoked %v", calls, sawRoleGone)
	}
	if _, err := svc.UnassignRole(ctx, adminOrigin, u.ID, "admin", true); err != nil || len(calls) != 1 {
		t.Fatalf("removing a role the user lacks revoked again (%v, %d calls)", err, len(calls))
	}
	if _, err := svc.SetDisabled(ctx, adminOrigin, u.ID, true, false); err != nil || len(calls) != 1 {
		t.Fatalf("disable with revoke=false revoked (%v, %d calls)", err, len(calls))
	}
	if _, err := svc.SetDisabled(ctx, adminOrigin, u.ID, true, true); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 2 || !sawDisabled[1] {
		t.Fatalf("disable: revocations %v, disabled when revoked %v", calls, sawDisabled)
	}
}
