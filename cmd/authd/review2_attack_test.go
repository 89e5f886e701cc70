package main

// Second attack review (admin console, device grant, PAR, email links,
// client addresses, refresh rotation). Each test here states a hole: it
// fails while the hole is open.

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/authd/authd/internal/audit"
)

// TestAttack2_ConsoleSelfLockoutByUppercaseID: the console's self-lockout
// guards compare the {id} path segment with the admin's id as strings, but
// the domain code accepts any-case UUIDs (uuidRE has A-F) and Postgres
// compares them as uuid values. An administrator (or anyone holding their
// session and CSRF token) posts /admin/users/<OWN-ID-UPPERCASED>/roles/remove
// role=admin (or /disable, /delete) and locks themself out, which the
// console promises cannot happen.
func TestAttack2_ConsoleSelfLockoutByUppercaseID(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	admin := e.mustUser("admin@example.com", "admin")
	b, csrf := e.loggedIn("admin@example.com")
	upper := strings.ToUpper(admin.ID)
	if upper == admin.ID {
		t.Skip("id has no letters")
	}
	b.post(e.URL+"/admin/users/"+upper+"/roles/remove", url.Values{"csrf_token": {csrf}, "role": {"admin"}})
	if !slices.Contains(e.roles(admin.ID), "admin") {
		t.Errorf("the administrator removed their own admin role through /admin/users/%s/roles/remove", upper)
	}
	// A second session, since the first may have been ended by the removal.
	if _, err := e.accts.AssignRole(context.Background(), audit.Event{}, admin.ID, "admin"); err != nil {
		t.Fatal(err)
	}
	b, csrf = e.loggedIn("admin@example.com")
	b.post(e.URL+"/admin/users/"+upper+"/disable", url.Values{"csrf_token": {csrf}})
	u, err := e.accts.User(context.Background(), admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	if u.Disabled {
		t.Errorf("the administrator disabled their own account through /admin/users/%s/disable", upper)
	}
}
