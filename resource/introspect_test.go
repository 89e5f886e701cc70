package resource_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authd/authd/internal/testkit"
	"github.com/authd/authd/resource"
)

func TestVerifier_Introspection(t *testing.T) {
	f := newFakeIssuer(t)
	key := newECKey(t, "k1")
	f.publish(key)
	var calls atomic.Int64
	var active atomic.Bool
	active.Store(true)
	f.setIntrospection(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		id, secret, ok := r.BasicAuth()
		if !ok || id != "rs" || secret != "s%3Acret" || r.PostFormValue("token") == "" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		if !active.Load() {
			_ = json.NewEncoder(w).Encode(map[string]any{"active": false})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"active": true, "scope": "notes:read", "roles": []string{"user"}})
	})
	c := testkit.NewClock(time.Now())
	v := mustVerifier(t, f, c, func(cfg *resource.Config) {
		cfg.Introspection = &resource.Introspection{ClientID: "rs", ClientSecret: "s:cret"}
	})
	ctx := context.Background()
	tok := sign(t, key, "at+jwt", f.claims(c.Now()))

	t.Run("OK_LiveRoles", func(t *testing.T) {
		cl, err := v.Verify(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(cl.Roles, []string{"user"}) || !slices.Equal(cl.Scopes, []string{"notes:read"}) {
			t.Errorf("roles %v scopes %v, want the introspected ones", cl.Roles, cl.Scopes)
		}
	})
	t.Run("OK_Cached", func(t *testing.T) {
		before := calls.Load()
		for range 5 {
			if _, err := v.Verify(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
		if calls.Load() != before {
			t.Errorf("introspected %d more times within the cache TTL", calls.Load()-before)
		}
	})
	t.Run("ErrRevoked", func(t *testing.T) {
		active.Store(false)
		c.Advance(resource.DefaultIntrospectionTTL)
		if _, err := v.Verify(ctx, tok); !errors.Is(err, resource.ErrInvalidToken) {
			t.Fatalf("revoked token: %v", err)
		}
	})
	t.Run("ErrOfflineInvalidNeverIntrospected", func(t *testing.T) {
		before := calls.Load()
		bad := f.claims(c.Now())
		bad["aud"] = "other"
		if _, err := v.Verify(ctx, sign(t, key, "at+jwt", bad)); !errors.Is(err, resource.ErrInvalidToken) {
			t.Fatal(err)
		}
		if calls.Load() != before {
			t.Error("an offline-invalid token reached introspection")
		}
	})
	t.Run("ErrWrongCredentialsIsUnavailable", func(t *testing.T) {
		v2 := mustVerifier(t, f, c, func(cfg *resource.Config) {
			cfg.Introspection = &resource.Introspection{ClientID: "rs", ClientSecret: "wrong"}
		})
		_, err := v2.Verify(ctx, sign(t, key, "at+jwt", f.claims(c.Now().Add(time.Second))))
		if !errors.Is(err, resource.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	})
}
