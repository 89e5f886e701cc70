package clients_test

import (
	"context"
	"testing"

	"github.com/authd/authd/oauth/clients"
	"github.com/authd/authd/storage/fositestore"
	"github.com/authd/authd/storage/storagetest"
)

// Resource servers' own scopes can be registered; malformed scope tokens
// cannot.
func TestRegistry_ScopeTokens(t *testing.T) {
	cr := clients.NewRegistry(fositestore.New(storagetest.NewDB(t).Pool, fositestore.Options{}))
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		scope string
		ok    bool
	}{
		{"ResourceServerScope", "notes:read", true},
		{"Builtin", "credits:spend", true},
		{"ErrSpace", "notes read", false},
		{"ErrQuote", `notes"read`, false},
		{"ErrBackslash", `notes\read`, false},
		{"ErrEmpty", "", false},
		{"ErrNonASCII", "notés", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := cr.CreateClient(ctx, clients.Spec{Name: tc.name, GrantTypes: []string{"client_credentials"}, Scopes: []string{tc.scope}})
			if (err == nil) != tc.ok {
				t.Fatalf("scope %q: err = %v, want ok=%v", tc.scope, err, tc.ok)
			}
		})
	}
}
