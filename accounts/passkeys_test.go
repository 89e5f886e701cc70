package accounts_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/accounts/mail"
)

const testRP = "login.example.test"

func newPasskey(userID string, n int) accounts.Passkey {
	return accounts.Passkey{UserID: userID, RPID: testRP, CredentialID: []byte(fmt.Sprintf("cred-%s-%d", userID, n)),
		Name: fmt.Sprintf("Key %d", n), PublicKey: []byte{0xa5, 1, 2, 3}, AttestationFormat: "none", AttestationType: "none",
		Transports: []string{"internal", "hybrid"}, SignCount: 7, Flags: accounts.PasskeyFlagUserPresent | accounts.PasskeyFlagUserVerified | accounts.PasskeyFlagBackupEligible,
		Passwordless: true, Attestation: []byte(`{"clientDataJSON":"e30"}`)}
}

// TestPasskeys_Store is the storage contract of passkeys, one case per
// behaviour, each on a fresh database.
func TestPasskeys_Store(t *testing.T) {
	ctx := context.Background()
	t.Run("OK_AddListRoundTrip", func(t *testing.T) {
		s, pool := MustServiceCfg(t, accounts.Config{})
		u := mustUser(t, s, "pk@example.com")
		in := newPasskey(u.ID, 1)
		got, err := s.AddPasskey(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		list, err := s.Passkeys(ctx, u.ID, testRP)
		if err != nil || len(list) != 1 {
			t.Fatalf("list = %v, %v", list, err)
		}
		p := list[0]
		if p.ID != got.ID || !bytes.Equal(p.CredentialID, in.CredentialID) || p.Name != "Key 1" || p.SignCount != 7 ||
			!p.Passwordless || !p.BackupEligible() || p.BackedUp() || !p.UserVerified() || len(p.Transports) != 2 ||
			p.LastUsedAt != nil || p.CreatedAt.IsZero() || string(p.Attestation) == "" {
			t.Fatalf("round trip lost data: %+v", p)
		}
		// Another RP ID sees nothing: credentials are scoped to the RP.
		if other, _ := s.Passkeys(ctx, u.ID, "other.test"); len(other) != 0 {
			t.Fatalf("other RP sees %d passkeys", len(other))
		}
		if n := countRows(t, pool, `SELECT count(*) FROM outbox WHERE type = $1 AND payload->>'to' = $2 AND payload->'data'->>'Factor' = 'Key 1'`, mail.PasskeyAdded, u.Email); n != 1 {
			t.Fatalf("%d passkey-added mails", n)
		}
		if n := countRows(t, pool, `SELECT count(*) FROM audit_events WHERE type = 'user.passkey_added' AND target_id = $1`, u.ID); n != 1 {
			t.Fatalf("%d audit rows", n)
		}
	})
	t.Run("ErrPasskeyExists", func(t *testing.T) {
		s, _ := MustServiceCfg(t, accounts.Config{})
		a, b := mustUser(t, s, "a@example.com"), mustUser(t, s, "b@example.com")
		p := newPasskey(a.ID, 1)
		if _, err := s.AddPasskey(ctx, p); err != nil {
			t.Fatal(err)
		}
		p.UserID = b.ID // the same credential id for another user
		if _, err := s.AddPasskey(ctx, p); !errors.Is(err, accounts.ErrPasskeyExists) {
			t.Fatalf("err = %v, want ErrPasskeyExists", err)
		}
	})
	t.Run("ErrName", func(t *testing.T) {
		s, _ := MustServiceCfg(t, accounts.Config{})
		u := mustUser(t, s, "n@example.com")
		for _, name := range []string{"", "   ", "a\x00b", "line\nbreak", string(bytes.Repeat([]byte("x"), 65))} {
			p := newPasskey(u.ID, 1)
			p.Name = name
			var pe *accounts.PolicyError
			if _, err := s.AddPasskey(ctx, p); !errors.As(err, &pe) || pe.Field != "name" {
				t.Fatalf("name %q: err = %v", name, err)
			}
		}
	})
	t.Run("ErrTooManyPasskeys_UnderConcurrency", func(t *testing.T) {
		s, pool := MustServiceCfg(t, accounts.Config{})
		u := mustUser(t, s, "many@example.com")
		var wg sync.WaitGroup
		for i := 0; i < accounts.MaxPasskeys+5; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); _, _ = s.AddPasskey(ctx, newPasskey(u.ID, i)) }()
		}
		wg.Wait()
		if n := countRows(t, pool, `SELECT count(*) FROM webauthn_credentials WHERE user_id = $1`, u.ID); n != accounts.MaxPasskeys {
			t.Fatalf("%d passkeys stored, cap is %d", n, accounts.MaxPasskeys)
		}
		if _, err := s.AddPasskey(ctx, newPasskey(u.ID, 999)); !errors.Is(err, accounts.ErrTooManyPasskeys) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("RenameAndPasswordless_OwnOnly", func(t *testing.T) {
		s, _ := MustServiceCfg(t, accounts.Config{})
		a, b := mustUser(t, s, "a@example.com"), mustUser(t, s, "b@example.com")
		p, err := s.AddPasskey(ctx, newPasskey(a.ID, 1))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RenamePasskey(ctx, b.ID, p.ID, "Stolen"); !errors.Is(err, accounts.ErrPasskeyNotFound) {
			t.Fatalf("rename by another user: %v", err)
		}
		if err := s.SetPasskeyPasswordless(ctx, b.ID, p.ID, false); !errors.Is(err, accounts.ErrPasskeyNotFound) {
			t.Fatalf("toggle by another user: %v", err)
		}
		if err := s.RenamePasskey(ctx, a.ID, "not-a-uuid", "x"); !errors.Is(err, accounts.ErrPasskeyNotFound) {
			t.Fatalf("malformed id: %v", err)
		}
		if err := s.RenamePasskey(ctx, a.ID, p.ID, "  Laptop  "); err != nil {
			t.Fatal(err)
		}
		if err := s.SetPasskeyPasswordless(ctx, a.ID, p.ID, false); err != nil {
			t.Fatal(err)
		}
		list, _ := s.Passkeys(ctx, a.ID, testRP)
		if list[0].Name != "Laptop" || list[0].Passwordless {
			t.Fatalf("after rename/toggle: %+v", list[0])
		}
	})
	t.Run("Delete_OwnOnlyAndMailed", func(t *testing.T) {
		s, pool := MustServiceCfg(t, accounts.Config{})
		a, b := mustUser(t, s, "a@example.com"), mustUser(t, s, "b@example.com")
		p, err := s.AddPasskey(ctx, newPasskey(a.ID, 1))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DeletePasskey(ctx, b.ID, p.ID); !errors.Is(err, accounts.ErrPasskeyNotFound) {
			t.Fatalf("delete by another user: %v", err)
		}
		if n := countRows(t, pool, `SELECT count(*) FROM webauthn_credentials WHERE id = $1`, p.ID); n != 1 {
			t.Fatal("another user deleted the passkey")
		}
		if err := s.DeletePasskey(ctx, a.ID, p.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.DeletePasskey(ctx, a.ID, p.ID); !errors.Is(err, accounts.ErrPasskeyNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if n := countRows(t, pool, `SELECT count(*) FROM outbox WHERE type = $1 AND payload->>'to' = $2`, mail.PasskeyRemoved, a.Email); n != 1 {
			t.Fatalf("%d passkey-removed mails", n)
		}
		if n := countRows(t, pool, `SELECT count(*) FROM outbox WHERE type = $1`, mail.PasskeyRemoved); n != 1 {
			t.Fatalf("%d passkey-removed mails in all", n)
		}
	})
	t.Run("RecordUse_CompareAndSet", func(t *testing.T) {
		s, _ := MustServiceCfg(t, accounts.Config{})
		u := mustUser(t, s, "use@example.com")
		p, err := s.AddPasskey(ctx, newPasskey(u.ID, 1))
		if err != nil {
			t.Fatal(err)
		}
		use := accounts.PasskeyUse{PrevSignCount: 7, SignCount: 8, Flags: p.Flags | accounts.PasskeyFlagBackupState}
		if err := s.RecordPasskeyUse(ctx, p.ID, use); err != nil {
			t.Fatal(err)
		}
		// The same read counter again: another login moved it meanwhile.
		if err := s.RecordPasskeyUse(ctx, p.ID, use); !errors.Is(err, accounts.ErrPasskeyRace) {
			t.Fatalf("stale update: %v", err)
		}
		list, _ := s.Passkeys(ctx, u.ID, testRP)
		if list[0].SignCount != 8 || !list[0].BackedUp() || list[0].LastUsedAt == nil {
			t.Fatalf("after use: %+v", list[0])
		}
		if err := s.FlagPasskeyClone(ctx, p.ID); err != nil {
			t.Fatal(err)
		}
		list, _ = s.Passkeys(ctx, u.ID, testRP)
		if !list[0].CloneWarning {
			t.Fatal("clone warning not stored")
		}
	})
	t.Run("Handle_StableAndResolves", func(t *testing.T) {
		s, _ := MustServiceCfg(t, accounts.Config{})
		u := mustUser(t, s, "h@example.com")
		h1, err := s.PasskeyHandle(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		h2, _ := s.PasskeyHandle(ctx, u.ID)
		if len(h1) != 64 || !bytes.Equal(h1, h2) {
			t.Fatalf("handle not stable: %x %x", h1, h2)
		}
		got, err := s.UserByPasskeyHandle(ctx, h1)
		if err != nil || got.ID != u.ID {
			t.Fatalf("resolve: %v %v", got, err)
		}
		if _, err := s.UserByPasskeyHandle(ctx, []byte("unknown")); !errors.Is(err, accounts.ErrNotFound) {
			t.Fatalf("unknown handle: %v", err)
		}
	})
	t.Run("Ceremony_SingleUse", func(t *testing.T) {
		s, _ := MustServiceCfg(t, accounts.Config{})
		u := mustUser(t, s, "c@example.com")
		tok, err := s.StartCeremony(ctx, accounts.Ceremony{Kind: accounts.CeremonySecondFactor, UserID: u.ID, Data: []byte(`{"challenge":"x"}`), ExpiresAt: time.Now().Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.TakeCeremony(ctx, accounts.CeremonyLogin, tok); !errors.Is(err, accounts.ErrNoCeremony) {
			t.Fatalf("wrong kind: %v", err)
		}
		c, err := s.TakeCeremony(ctx, accounts.CeremonySecondFactor, tok)
		if err != nil || c.UserID != u.ID || c.SessionID != "" {
			t.Fatalf("take: %+v %v", c, err)
		}
		if _, err := s.TakeCeremony(ctx, accounts.CeremonySecondFactor, tok); !errors.Is(err, accounts.ErrNoCeremony) {
			t.Fatalf("second take: %v", err)
		}
	})
	t.Run("Ceremony_SingleUseUnderConcurrency", func(t *testing.T) {
		s, _ := MustServiceCfg(t, accounts.Config{})
		tok, err := s.StartCeremony(ctx, accounts.Ceremony{Kind: accounts.CeremonyLogin, Data: []byte(`{}`), ExpiresAt: time.Now().Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.TakeCeremony(ctx, accounts.CeremonyLogin, tok); err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d takers won, want 1", wins)
		}
	})
	t.Run("Ceremony_Expired", func(t *testing.T) {
		s, _ := MustServiceCfg(t, accounts.Config{})
		tok, err := s.StartCeremony(ctx, accounts.Ceremony{Kind: accounts.CeremonyLogin, Data: []byte(`{}`), ExpiresAt: time.Now().Add(-time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.TakeCeremony(ctx, accounts.CeremonyLogin, tok); !errors.Is(err, accounts.ErrNoCeremony) {
			t.Fatalf("expired: %v", err)
		}
	})
	t.Run("UserDeleted_Cascades", func(t *testing.T) {
		s, pool := MustServiceCfg(t, accounts.Config{})
		u := mustUser(t, s, "gone@example.com")
		if _, err := s.AddPasskey(ctx, newPasskey(u.ID, 1)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PasskeyHandle(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `DELETE FROM users WHERE id = $1`, u.ID); err != nil {
			t.Fatal(err)
		}
		if n := countRows(t, pool, `SELECT count(*) FROM webauthn_credentials`) + countRows(t, pool, `SELECT count(*) FROM webauthn_users`); n != 0 {
			t.Fatalf("%d passkey rows outlive the user", n)
		}
	})
}
