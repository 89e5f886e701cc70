package oauth_test

import (
	"context"
	"net/url"
	"testing"
	"time"
)

// TestKeyRotation: after a rotation old tokens still verify via JWKS until
// they expire, new tokens carry the new kid, and a second instance on the
// same database serves the new JWKS after Reload.
func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	replica := e.sibling()
	c, secret := e.mustClient(serviceSpec("client_secret_basic"))
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"credits:charge"}}

	_, before := e.tokenRequest(c.ID, secret, form)
	oldAT := before["access_token"].(string)
	oldKid := jwsHeader(t, oldAT, "kid")

	// The next key was published at start; move past its settle time so
	// the rotation takes effect now.
	e.clock.Advance(time.Hour)
	if err := e.keys.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	_, after := e.tokenRequest(c.ID, secret, form)
	newAT := after["access_token"].(string)
	newKid := jwsHeader(t, newAT, "kid")
	if newKid == oldKid {
		t.Fatalf("kid unchanged after rotation: %s", newKid)
	}
	// Both verify against the JWKS; the old one is still introspectable.
	verifyWithJWKS(t, e, oldAT)
	verifyWithJWKS(t, e, newAT)
	if e.introspect(c.ID, secret, oldAT)["active"] != true {
		t.Error("token signed by the retired key no longer active")
	}
	if _, err := e.prov.VerifyAccessToken(ctx, oldAT); err != nil {
		t.Errorf("VerifyAccessToken(old): %v", err)
	}

	// The replica picks the rotation up without restart.
	if err := replica.keys.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	verifyWithJWKS(t, replica, newAT)
	_, rep := replica.tokenRequest(c.ID, secret, form)
	if kid := jwsHeader(t, rep["access_token"].(string), "kid"); kid != newKid {
		t.Errorf("replica signs with %s, want %s", kid, newKid)
	}
	if replica.introspect(c.ID, secret, newAT)["active"] != true {
		t.Error("replica cannot introspect a token signed by the new key")
	}
}
