package accounts

import (
	"github.com/authd/authd/internal/audit"

	"context"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/accounts/mail"
)

// MaxNameLen bounds display names, in characters.
const MaxNameLen = 200

// Registration is a self-service sign-up.
type Registration struct {
	Email    string
	Password string
	Name     string
}

// CheckName validates a display name and returns it trimmed. Names are shown
// to other people (and used to be put in mail), so besides the length it
// refuses what can disguise text: control characters, line and paragraph
// separators, bidi overrides and isolates, and every other invisible format
// character (Unicode Cf) except the joiners that scripts and emoji need.
func CheckName(field, name string) (string, error) {
	name = strings.TrimSpace(name)
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxNameLen || strings.ContainsAny(name, "\x00\r\n") {
		return "", &PolicyError{Field: field, Reason: fmt.Sprintf("must be a single line of at most %d characters", MaxNameLen)}
	}
	for _, r := range name {
		if hiddenRune(r) {
			return "", &PolicyError{Field: field, Reason: fmt.Sprintf("must not contain invisible or direction-changing characters (found U+%04X)", r)}
		}
	}
	return name, nil
}

// hiddenRune reports the characters a display name may not hold.
func hiddenRune(r rune) bool {
	switch {
	case r == '\u200c', r == '\u200d': // ZWNJ, ZWJ: Persian, Indic scripts, emoji sequences
		return false
	case unicode.IsControl(r), unicode.Is(unicode.Zl, r), unicode.Is(unicode.Zp, r), unicode.Is(unicode.Cf, r):
		return true // Cf holds the bidi controls U+202A–202E, U+2066–2069, U+200E/F and U+FEFF
	}
	return false
}

// Register creates a user with the default role, and in the same transaction
// queues the user.registered event and the verification mail. It returns
// *PolicyError (field "email", "password" or "name") and ErrEmailTaken.
func (s *Service) Register(ctx context.Context, reg Registration) (*User, error) {
	u, err := s.register(ctx, reg)
	s.cfg.Metrics.registration(err)
	if err == nil {
		s.cfg.Metrics.verification("requested")
	}
	return u, err
}

func (s *Service) register(ctx context.Context, reg Registration) (*User, error) {
	email, err := NormalizeEmail(reg.Email)
	if err != nil {
		return nil, &PolicyError{Field: "email", Reason: "must be a valid email address"}
	}
	name, err := CheckName("name", reg.Name)
	if err != nil {
		return nil, err
	}
	if err := s.policy.Check("password", reg.Password); err != nil {
		return nil, err
	}
	return s.createRegistered(ctx, NewUser{Email: email, Password: reg.Password, Name: name}, nil)
}

// UpstreamRegistration is a sign-up through an upstream identity provider:
// no password, the email verified only when the provider asserted it, and
// the upstream roles the provider is allowed to grant.
type UpstreamRegistration struct {
	Email         string
	EmailVerified bool
	Name          string
	Roles         []string
}

// RegisterUpstream creates a user exactly as Register does (default role,
// user.registered event, audit, a verification mail unless the address is
// already verified), without a password. link runs in the same transaction,
// so the upstream identity is recorded with the account or not at all. It
// returns *PolicyError, ErrEmailTaken and ErrUnknownRole.
func (s *Service) RegisterUpstream(ctx context.Context, reg UpstreamRegistration, link func(tx pgx.Tx, u *User) error) (*User, error) {
	email, err := NormalizeEmail(reg.Email)
	if err != nil {
		return nil, &PolicyError{Field: "email", Reason: "must be a valid email address"}
	}
	// An upstream's name is not ours to refuse the login over: drop it.
	name, err := CheckName("name", reg.Name)
	if err != nil {
		name = ""
	}
	u, err := s.createRegistered(ctx, NewUser{Email: email, Name: name, Roles: reg.Roles, Verified: reg.EmailVerified, NoPassword: true}, link)
	s.cfg.Metrics.registration(err)
	if err == nil && !reg.EmailVerified {
		s.cfg.Metrics.verification("requested")
	}
	return u, err
}

// createRegistered is the one registration path: the user, its
// user.registered event and audit line, the verification mail (for an
// address not yet verified) and extra, in one transaction.
func (s *Service) createRegistered(ctx context.Context, nu NewUser, extra func(tx pgx.Tx, u *User) error) (*User, error) {
	return s.CreateUser(ctx, nu, func(tx pgx.Tx, u *User) error {
		if err := s.emit(ctx, tx, EventUserRegistered, map[string]any{"user_id": u.ID, "email": u.Email, "name": u.Name, "roles": u.Roles}); err != nil {
			return err
		}
		if err := s.auditSelf(ctx, tx, "user.registered", u.ID); err != nil {
			return err
		}
		if !u.EmailVerified {
			if err := s.sendVerification(ctx, tx, u, u.Email); err != nil {
				return err
			}
		}
		if extra != nil {
			return extra(tx, u)
		}
		return nil
	})
}

// auditSelf records an action a user took on their own account.
func (s *Service) auditSelf(ctx context.Context, tx pgx.Tx, typ, userID string) error {
	return s.auditSelfDetails(ctx, tx, typ, userID, nil)
}

// auditSelfDetails is auditSelf with details.
func (s *Service) auditSelfDetails(ctx context.Context, tx pgx.Tx, typ, userID string, details map[string]any) error {
	return audit.Record(ctx, tx, s.log, audit.Event{Type: typ, ActorType: audit.ActorUser, ActorID: userID, TargetType: "user", TargetID: userID, Details: details})
}

// sendVerification issues a verification token for address and queues its
// mail. The address is not proven yet, so the mail carries nothing the user
// chose (no display name): it cannot relay a message to a stranger.
func (s *Service) sendVerification(ctx context.Context, tx pgx.Tx, u *User, address string) error {
	tok, err := s.issueToken(ctx, tx, u.ID, purposeVerify, address, s.cfg.VerifyTTL)
	if err != nil {
		return err
	}
	return s.queueMail(ctx, tx, mail.VerifyEmail, address, mail.Data{
		Link: s.cfg.BaseURL + "/verify-email?token=" + tok, Expires: humanDuration(s.cfg.VerifyTTL),
	})
}
