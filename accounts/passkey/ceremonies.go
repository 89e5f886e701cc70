package passkey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/authd/authd/accounts"
)

// maxResponse bounds the browser's JSON response (attestation objects of
// real authenticators are a few KB).
const maxResponse = 64 << 10

// BeginRegistration starts adding a passkey to u from the browser session
// sessionID; only that session can finish it. The passkey must be
// discoverable (so it can log in without an email) and user verification
// is preferred (required later for passwordless use). The user's existing
// passkeys are excluded, so one authenticator is not registered twice.
func (s *Service) BeginRegistration(ctx context.Context, u *accounts.User, sessionID string) (*Options, error) {
	wu, err := s.load(ctx, u)
	if err != nil {
		return nil, err
	}
	if len(wu.keys) >= accounts.MaxPasskeys {
		return nil, accounts.ErrTooManyPasskeys
	}
	creation, sd, err := s.wa.BeginRegistration(wu,
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification:   protocol.VerificationPreferred,
		}),
		webauthn.WithExclusions(webauthn.Credentials(wu.WebAuthnCredentials()).CredentialDescriptors()),
		webauthn.WithExtensions(webauthn.WithExtensionCredProps()),
	)
	if err != nil {
		return nil, fmt.Errorf("passkey: begin registration: %w", err)
	}
	return s.begin(ctx, accounts.Ceremony{Kind: accounts.CeremonyRegister, UserID: u.ID, SessionID: sessionID}, creation, sd)
}

// Registration is what the user chose for a new passkey.
type Registration struct {
	Name string
	// Passwordless lets the passkey log in alone; it is honoured only when
	// the authenticator verified the user (PIN, biometrics).
	Passwordless bool
}

// FinishRegistration checks the browser's response (the JSON of the
// PublicKeyCredential) to the ceremony named by token and stores the new
// passkey. It returns accounts.ErrNoCeremony (unknown, used, expired, or
// begun by another user or session), ErrRejected, and the errors of
// accounts.AddPasskey.
func (s *Service) FinishRegistration(ctx context.Context, u *accounts.User, sessionID, token string, response []byte, reg Registration) (*accounts.Passkey, error) {
	if _, err := accounts.CheckPasskeyName(reg.Name); err != nil {
		return nil, err
	}
	c, sd, err := s.take(ctx, accounts.CeremonyRegister, token)
	if err != nil {
		return nil, err
	}
	if c.UserID != u.ID || c.SessionID != sessionID {
		return nil, accounts.ErrNoCeremony
	}
	if len(response) == 0 || len(response) > maxResponse {
		return nil, fmt.Errorf("%w: empty or oversized response", ErrRejected)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return nil, rejected(err)
	}
	wu, err := s.load(ctx, u)
	if err != nil {
		return nil, err
	}
	cred, err := s.wa.CreateCredential(wu, sd, parsed)
	if err != nil {
		return nil, rejected(err)
	}
	att, err := json.Marshal(cred.Attestation)
	if err != nil {
		return nil, fmt.Errorf("passkey: encode attestation: %w", err)
	}
	ext, err := json.Marshal(cred.Extensions)
	if err != nil {
		return nil, fmt.Errorf("passkey: encode extensions: %w", err)
	}
	p := accounts.Passkey{
		UserID: u.ID, RPID: s.rpID, CredentialID: cred.ID, Name: reg.Name, PublicKey: cred.PublicKey,
		AttestationType: cred.AttestationType, AttestationFormat: cred.AttestationFormat,
		Attestation: att, Extensions: ext, AAGUID: cred.Authenticator.AAGUID,
		Attachment: string(cred.Authenticator.Attachment), SignCount: cred.Authenticator.SignCount,
		Flags:        uint8(cred.Flags.ProtocolValue()),
		Passwordless: reg.Passwordless && cred.Flags.UserVerified,
	}
	for _, t := range cred.Transport {
		p.Transports = append(p.Transports, string(t))
	}
	return s.store.AddPasskey(ctx, p)
}

// Result is a verified assertion: who, with which passkey, and whether the
// authenticator verified the user in this ceremony.
type Result struct {
	User         *accounts.User
	Passkey      *accounts.Passkey
	UserVerified bool
}

// AMR is the RFC 8176 authentication methods of the assertion, with
// password telling whether a password was checked in the same login:
// "hwk" for the passkey (a proof of possession of a hardware-bound or
// synced key), and "mfa" when it was combined with a password or when the
// authenticator verified the user (the device and the PIN or biometric
// behind it are two factors, as RFC 8176 practice counts a verified
// passkey).
func (r *Result) AMR(password bool) []string {
	var amr []string
	if password {
		amr = append(amr, "pwd")
	}
	amr = append(amr, "hwk")
	if password || r.UserVerified {
		amr = append(amr, "mfa")
	}
	return amr
}

// BeginLogin starts a passwordless login: no user is known yet, the
// browser offers the discoverable passkeys it has for authd, and the
// authenticator must verify the user.
func (s *Service) BeginLogin(ctx context.Context) (*Options, error) {
	assertion, sd, err := s.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, fmt.Errorf("passkey: begin login: %w", err)
	}
	return s.begin(ctx, accounts.Ceremony{Kind: accounts.CeremonyLogin}, assertion, sd)
}

// FinishLogin checks a passwordless login's assertion and returns the user
// and passkey. It returns accounts.ErrNoCeremony, ErrRejected (also for an
// unknown credential or a disabled user), ErrNotPasswordless and ErrCloned.
func (s *Service) FinishLogin(ctx context.Context, token string, response []byte) (*Result, error) {
	_, sd, err := s.take(ctx, accounts.CeremonyLogin, token)
	if err != nil {
		return nil, err
	}
	parsed, err := parseAssertion(response)
	if err != nil {
		return nil, err
	}
	var found *user
	var lookupErr error
	handler := func(rawID, handle []byte) (webauthn.User, error) {
		u, err := s.store.UserByPasskeyHandle(ctx, handle)
		if err != nil {
			lookupErr = err
			return nil, err
		}
		if found, err = s.load(ctx, u); err != nil {
			lookupErr = err
			return nil, err
		}
		return found, nil
	}
	wu, cred, err := s.wa.ValidatePasskeyLogin(handler, sd, parsed)
	if err != nil {
		if lookupErr != nil && !errors.Is(lookupErr, accounts.ErrNotFound) && !errors.Is(lookupErr, accounts.ErrUserDisabled) {
			return nil, lookupErr
		}
		return nil, rejected(err)
	}
	fu := wu.(*user)
	return s.used(ctx, fu, cred, parsed, true)
}

// Enrolled reports whether the user holds a passkey, which makes the
// passkey a method of the login's second step.
func (s *Service) Enrolled(ctx context.Context, userID string) (bool, error) {
	keys, err := s.store.Passkeys(ctx, userID, s.rpID)
	return len(keys) > 0, err
}

// BeginSecondFactor starts the passkey step of u's pending login
// challengeID (accounts.Challenge.ID), whose first factor was checked: the
// browser may use any of u's passkeys. It replaces the ceremony the
// pending login had. It returns ErrNoPasskeys when u has none.
func (s *Service) BeginSecondFactor(ctx context.Context, u *accounts.User, challengeID string) (*Options, error) {
	wu, err := s.load(ctx, u)
	if err != nil {
		return nil, err
	}
	if len(wu.keys) == 0 {
		return nil, ErrNoPasskeys
	}
	assertion, sd, err := s.wa.BeginLogin(wu, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return nil, fmt.Errorf("passkey: begin second factor: %w", err)
	}
	return s.begin(ctx, accounts.Ceremony{Kind: accounts.CeremonySecondFactor, UserID: u.ID, ChallengeID: challengeID}, assertion, sd)
}

// FinishSecondFactor checks the passkey step of u's pending login
// challengeID. It returns accounts.ErrNoCeremony (also for a ceremony
// begun for another user or another pending login), ErrRejected (also for
// another user's credential) and ErrCloned.
func (s *Service) FinishSecondFactor(ctx context.Context, u *accounts.User, challengeID, token string, response []byte) (*Result, error) {
	c, sd, err := s.take(ctx, accounts.CeremonySecondFactor, token)
	if err != nil {
		return nil, err
	}
	if c.UserID != u.ID || c.ChallengeID != challengeID {
		return nil, accounts.ErrNoCeremony
	}
	parsed, err := parseAssertion(response)
	if err != nil {
		return nil, err
	}
	wu, err := s.load(ctx, u)
	if err != nil {
		return nil, err
	}
	cred, err := s.wa.ValidateLogin(wu, sd, parsed)
	if err != nil {
		return nil, rejected(err)
	}
	return s.used(ctx, wu, cred, parsed, false)
}

func parseAssertion(response []byte) (*protocol.ParsedCredentialAssertionData, error) {
	if len(response) == 0 || len(response) > maxResponse {
		return nil, fmt.Errorf("%w: empty or oversized response", ErrRejected)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return nil, rejected(err)
	}
	return parsed, nil
}

// used applies what a verified assertion tells about the passkey: a
// counter that did not move forward flags the passkey and refuses the
// login (go-webauthn leaves that choice to the relying party and reports
// it as CloneWarning); otherwise the new counter and flags are stored.
func (s *Service) used(ctx context.Context, wu *user, cred *webauthn.Credential, parsed *protocol.ParsedCredentialAssertionData, passwordless bool) (*Result, error) {
	p := wu.passkey(cred.ID)
	if p == nil {
		return nil, fmt.Errorf("%w: credential not found after verification", ErrRejected)
	}
	if passwordless && !p.Passwordless {
		return nil, ErrNotPasswordless
	}
	if cred.Authenticator.CloneWarning {
		if err := s.store.FlagPasskeyClone(ctx, p.ID); err != nil {
			return nil, err
		}
		return nil, ErrCloned
	}
	err := s.store.RecordPasskeyUse(ctx, p.ID, accounts.PasskeyUse{PrevSignCount: p.SignCount,
		SignCount: cred.Authenticator.SignCount, Flags: uint8(cred.Flags.ProtocolValue())})
	if errors.Is(err, accounts.ErrPasskeyRace) || errors.Is(err, accounts.ErrPasskeyNotFound) {
		return nil, fmt.Errorf("%w: %v", ErrRejected, err)
	}
	if err != nil {
		return nil, err
	}
	return &Result{User: wu.u, Passkey: p, UserVerified: parsed.Response.AuthenticatorData.Flags.HasUserVerified()}, nil
}
