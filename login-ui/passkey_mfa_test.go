package loginui_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/accounts/passkey"
	loginui "github.com/authd/authd/login-ui"
)

// TestPasskeySecondFactor_CeremonyLifecycle: the step page's ceremony
// (written when the page renders, GET included) is bound to its pending
// login: a new render replaces it (one row, the old token dead), a new
// pending login ends it, and another pending login cannot finish it.
func TestPasskeySecondFactor_CeremonyLifecycle(t *testing.T) {
	s := newPasskeySite(t)
	ctx := context.Background()
	alice, err := s.accts.CreateUser(ctx, accounts.NewUser{Email: "alice@example.com", Password: pw1, Verified: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.accts.AddPasskey(ctx, accounts.Passkey{UserID: alice.ID, RPID: s.svc.RPID(), CredentialID: []byte("alice-cred"), Name: "Alice key",
		PublicKey: []byte{1}, Flags: accounts.PasskeyFlagUserPresent | accounts.PasskeyFlagUserVerified}); err != nil {
		t.Fatal(err)
	}
	f := s.svc.Factor(s.accts)
	rows := func() int {
		var n int
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM webauthn_ceremonies WHERE user_id = $1`, alice.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	_, chA, err := s.accts.StartChallenge(ctx, alice.ID, accounts.ChallengeVerify, []string{"pwd"}, "/account")
	if err != nil {
		t.Fatal(err)
	}
	var first *passkey.Prepared
	for range 3 { // three renders of the step page
		p, err := f.Prepare(ctx, chA)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = p.(*passkey.Prepared)
		}
	}
	if n := rows(); n != 1 {
		t.Fatalf("ceremonies after three renders: %d", n)
	}
	if _, err := s.svc.FinishSecondFactor(ctx, alice, chA.ID, first.Ceremony, []byte(`{}`)); !errors.Is(err, accounts.ErrNoCeremony) {
		t.Fatalf("a replaced ceremony: %v", err)
	}
	// A new pending login (a new password login) ends the old one and its
	// ceremony; the old ceremony does not finish the new login.
	p, _ := f.Prepare(ctx, chA)
	_, chB, err := s.accts.StartChallenge(ctx, alice.ID, accounts.ChallengeVerify, []string{"pwd"}, "/account")
	if err != nil {
		t.Fatal(err)
	}
	if n := rows(); n != 0 {
		t.Fatalf("ceremonies after the pending login ended: %d", n)
	}
	if _, err := s.svc.FinishSecondFactor(ctx, alice, chB.ID, p.(*passkey.Prepared).Ceremony, []byte(`{}`)); !errors.Is(err, accounts.ErrNoCeremony) {
		t.Fatalf("another pending login's ceremony: %v", err)
	}
	// Verify maps a refused ceremony to a rejected factor (it counts in
	// the login backoff).
	if err := f.Verify(ctx, chB, map[string][]string{"ceremony": {"nope"}, "credential": {"{}"}}); !errors.Is(err, accounts.ErrFactorRejected) {
		t.Fatalf("verify with an unknown ceremony: %v", err)
	}
}

// TestFinishFirstFactor_PasskeyAMR: a passwordless login that verified its
// user (hwk mfa) owes nothing more; one that did not (hwk) still owes the
// second factor like a password, so it never bypasses it.
func TestFinishFirstFactor_PasskeyAMR(t *testing.T) {
	s := newPasskeySite(t)
	ctx := context.Background()
	u, err := s.accts.CreateUser(ctx, accounts.NewUser{Email: "pat@example.com", Password: pw1, Verified: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.accts.AddPasskey(ctx, accounts.Passkey{UserID: u.ID, RPID: s.svc.RPID(), CredentialID: []byte("pat-cred"), Name: "Pat key",
		PublicKey: []byte{1}, Flags: accounts.PasskeyFlagUserPresent | accounts.PasskeyFlagUserVerified, Passwordless: true}); err != nil {
		t.Fatal(err)
	}
	login := &loginui.Login{UI: s.ui, Accounts: s.accts}
	for _, tc := range []struct {
		amr     []string
		to      string
		session bool
	}{
		{[]string{"hwk", "mfa"}, "/account", true},
		{[]string{"hwk"}, "/login/mfa", false},
	} {
		rec := httptest.NewRecorder()
		login.FinishFirstFactor(rec, httptest.NewRequest(http.MethodPost, s.url+"/login/passkey", nil), u, tc.amr, "/account")
		gotSession := false
		for _, c := range rec.Result().Cookies() {
			if c.Name == loginui.SessionCookie && c.Value != "" {
				gotSession = true
			}
		}
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != tc.to || gotSession != tc.session {
			t.Fatalf("amr %v: %d to %q, session %v", tc.amr, rec.Code, rec.Header().Get("Location"), gotSession)
		}
	}
}
