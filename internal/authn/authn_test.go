package authn_test

import (
	"testing"

	"github.com/authd/authd/internal/authn"
)

func TestIsAdmin(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    *authn.Principal
		want bool
	}{
		{"Nil", nil, false},
		{"UserWithRoleAndScope", &authn.Principal{UserID: "u", Roles: []string{"admin"}, Scopes: []string{"admin"}}, true},
		{"UserWithRoleNoScope", &authn.Principal{UserID: "u", Roles: []string{"admin"}, Scopes: []string{"openid"}}, false},
		{"UserWithScopeNoRole", &authn.Principal{UserID: "u", Roles: []string{"user"}, Scopes: []string{"admin"}}, false},
		{"ClientWithScope", &authn.Principal{ClientID: "c", Scopes: []string{"admin"}}, true},
		{"ClientWithoutScope", &authn.Principal{ClientID: "c", Scopes: []string{"credits:charge"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := authn.IsAdmin(tc.p); got != tc.want {
				t.Fatalf("IsAdmin = %v, want %v", got, tc.want)
			}
		})
	}
}
