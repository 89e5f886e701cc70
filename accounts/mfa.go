package accounts

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts/mail"
	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/storage"
)

// Second factors and the login's second step.
//
// The seam: a SecondFactor is one method of passing the second step (TOTP
// and recovery codes here; WebAuthn joins the same way). The Service keeps
// the list (built-ins first, then Config.Factors); everything else is
// shared and method-agnostic:
//
//   - Factors says which methods a user holds; HasSecondFactor (any method
//     but recovery codes, which only back another factor up) decides
//     whether login asks for a second step, and the password grant refuses
//     such a user;
//   - a Challenge is the pending half-login between the password and the
//     second factor (StartChallenge, PassChallenge): bound to the browser
//     by a cookie, short-lived, single use, never a session;
//   - PassChallenge runs the chosen method's Verify under the login
//     backoff and returns the amr (RFC 8176) the session records;
//   - ResetFactors (admin) calls every method's Reset.
//
// A new method implements SecondFactor, is added to Config.Factors where
// the app is wired, and adds its form to the hosted step page
// (login-ui/templates/login_mfa.html, a block per Method).

// Methods of the built-in factors.
const (
	MethodTOTP     = "totp"
	MethodRecovery = "recovery"
)

// RFC 8176 authentication method references.
const (
	AMRPassword = "pwd"
	AMROTP      = "otp"
	AMRHardware = "hwk"
	AMRMulti    = "mfa"
	// AMRFederated: the first factor was a login at an upstream provider.
	AMRFederated = "fed"
)

// Errors of the second factors.
var (
	// ErrFactorRejected means the answer to a second factor is wrong,
	// expired or already used; it counts towards the login backoff.
	ErrFactorRejected = errors.New("accounts: the code is not valid")
	// ErrNoChallenge means no pending login stands behind the cookie: it
	// expired, was used, or never existed.
	ErrNoChallenge = errors.New("accounts: the sign-in expired; please log in again")
	// ErrUnknownMethod means the form named a method the user does not hold.
	ErrUnknownMethod = errors.New("accounts: unknown second-factor method")
	// ErrNotEnrolling means no enrolment is pending (confirm without start).
	ErrNotEnrolling = errors.New("accounts: no authenticator enrolment is pending")
	// ErrAlreadyEnrolled means the user already holds this factor.
	ErrAlreadyEnrolled = errors.New("accounts: an authenticator app is already set up")
	// ErrNotEnrolled means the user does not hold the factor to act on.
	ErrNotEnrolled = errors.New("accounts: no authenticator app is set up")
)

// SecondFactor is one way of passing the login's second step.
type SecondFactor interface {
	// Method names the method in forms and lists ("totp", "recovery",
	// "webauthn").
	Method() string
	// AMR are the RFC 8176 references a success adds ("otp", "hwk").
	AMR() []string
	// Enrolled reports whether the user holds this factor.
	Enrolled(ctx context.Context, userID string) (bool, error)
	// Prepare returns what the method's form needs for this challenge (a
	// WebAuthn assertion challenge), or nil. It may write (it runs on the
	// step page's GET only when the method needs fresh server state, which
	// is bound to ch.ID and dies with it).
	Prepare(ctx context.Context, ch *Challenge) (any, error)
	// Verify checks the user's answer in form. A wrong, expired or replayed
	// answer is ErrFactorRejected; any other error is a failure.
	Verify(ctx context.Context, ch *Challenge, form url.Values) error
	// Reset removes the user's factor in q (admin reset, account deletion
	// of the factor); holding none is not an error.
	Reset(ctx context.Context, q storage.Querier, userID string) error
}

// Factors returns the methods the user holds, in the Service's order.
func (s *Service) Factors(ctx context.Context, userID string) ([]string, error) {
	var out []string
	for _, f := range s.factors {
		ok, err := f.Enrolled(ctx, userID)
		if err != nil {
			return nil, fmt.Errorf("accounts: factors of %s: %w", userID, err)
		}
		if ok {
			out = append(out, f.Method())
		}
	}
	return out, nil
}

// HasSecondFactor reports whether methods (from Factors) hold a real second
// factor; recovery codes alone only back one up.
func HasSecondFactor(methods []string) bool {
	return slices.ContainsFunc(methods, func(m string) bool { return m != MethodRecovery })
}

// MFARequired reports whether a login of u must pass a second factor: the
// role policy (AUTHD_MFA_REQUIRED_ROLES) demands one of u, or demanded is
// set (the client's require_mfa or the request's acr_values, which oauth
// reads). It is the one home of the policy decision: the authorization
// endpoint, the device approval, the password grant, the login and the
// admin console ask it (or MFAOwed).
func (s *Service) MFARequired(u *User, demanded bool) bool {
	return demanded || slices.ContainsFunc(u.Roles, func(r string) bool { return slices.Contains(s.cfg.MFARequiredRoles, r) })
}

// AddFactor adds a second-factor method built after the Service (the
// passkeys, whose ceremonies need the Service as their store). Call it
// while wiring, before serving; Config.Factors is the way for the others.
func (s *Service) AddFactor(f SecondFactor) { s.factors = append(s.factors, f) }

// MFAOwed reports whether MFARequired(u, demanded) asks for a second
// factor that the login behind sess did not pass (a session from before the
// policy or the role, or a login that recorded no second factor).
func (s *Service) MFAOwed(u *User, sess *Session, demanded bool) bool {
	return s.MFARequired(u, demanded) && !slices.Contains(sess.AMR, AMRMulti)
}

// factor returns the method named m, or nil.
func (s *Service) factor(m string) SecondFactor {
	for _, f := range s.factors {
		if f.Method() == m {
			return f
		}
	}
	return nil
}

// Challenge purposes.
const (
	// ChallengeVerify waits for one of the user's second factors.
	ChallengeVerify = "verify"
	// ChallengeEnrol waits for a user who must have a second factor and
	// has none to enrol one (TOTP) before any session exists.
	ChallengeEnrol = "enrol"
)

// Challenge is a pending half-login: the first factor passed, the second
// is due.
type Challenge struct {
	ID, UserID string
	Purpose    string
	// AMR are the methods passed so far ("pwd").
	AMR       []string
	ReturnTo  string
	ExpiresAt time.Time
}

// challengeTTL bounds the time between the password and the second factor.
const challengeTTL = 5 * time.Minute

// StartChallenge records a pending login of userID after the methods in amr,
// and returns the cookie value that alone can continue it (only its hash
// is stored). The user's earlier pending logins end.
func (s *Service) StartChallenge(ctx context.Context, userID, purpose string, amr []string, returnTo string) (string, *Challenge, error) {
	token, hash := NewToken()
	ch := &Challenge{UserID: userID, Purpose: purpose, AMR: amr, ReturnTo: returnTo, ExpiresAt: s.cfg.Now().Add(challengeTTL)}
	err := storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM login_challenges WHERE user_id = $1 OR expires_at < $2`, userID, s.cfg.Now()); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO login_challenges (token_hash, user_id, purpose, amr, return_to, expires_at)
			VALUES ($1,$2,$3,$4,$5,$6) RETURNING id`, hash, userID, purpose, amr, returnTo, ch.ExpiresAt).Scan(&ch.ID)
	})
	if err != nil {
		return "", nil, fmt.Errorf("accounts: start second-factor challenge: %w", err)
	}
	return token, ch, nil
}

// ChallengeByToken returns the live pending login behind a cookie value,
// or ErrNoChallenge.
func (s *Service) ChallengeByToken(ctx context.Context, token string) (*Challenge, error) {
	if token == "" || len(token) > 128 {
		return nil, ErrNoChallenge
	}
	var ch Challenge
	err := s.pool.QueryRow(ctx, `SELECT id, user_id, purpose, amr, return_to, expires_at FROM login_challenges
		WHERE token_hash = $1 AND expires_at > $2`, HashToken(token), s.cfg.Now()).
		Scan(&ch.ID, &ch.UserID, &ch.Purpose, &ch.AMR, &ch.ReturnTo, &ch.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNoChallenge
	}
	if err != nil {
		return nil, fmt.Errorf("accounts: look up challenge: %w", err)
	}
	return &ch, nil
}

// PrepareChallenge returns, per method the user holds, what its form needs.
func (s *Service) PrepareChallenge(ctx context.Context, ch *Challenge) (map[string]any, error) {
	methods, err := s.Factors(ctx, ch.UserID)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, m := range methods {
		d, err := s.factor(m).Prepare(ctx, ch)
		if err != nil {
			return nil, err
		}
		out[m] = d
	}
	return out, nil
}

// PassChallenge checks the answer to method in form for the pending login
// behind token and, when it is right, ends the challenge (single use) and
// returns it with the amr the new session records. Wrong answers count
// towards the user's login backoff like wrong passwords. Errors:
// ErrNoChallenge, ErrUnknownMethod, ErrFactorRejected, *ThrottledError.
func (s *Service) PassChallenge(ctx context.Context, token, method string, form url.Values) (*Challenge, []string, error) {
	ch, err := s.ChallengeByToken(ctx, token)
	if err != nil {
		return nil, nil, err
	}
	if ch.Purpose != ChallengeVerify {
		return nil, nil, ErrNoChallenge
	}
	f := s.factor(method)
	if f == nil {
		return nil, nil, ErrUnknownMethod
	}
	if ok, err := f.Enrolled(ctx, ch.UserID); err != nil || !ok {
		if err == nil {
			err = ErrUnknownMethod
		}
		return nil, nil, err
	}
	if err := s.guardFactor(ctx, ch.UserID, func() error { return f.Verify(ctx, ch, form) }); err != nil {
		return nil, nil, err
	}
	if err := s.endChallenge(ctx, token); err != nil {
		return nil, nil, err
	}
	return ch, withAMR(ch.AMR, f.AMR()...), nil
}

// endChallenge deletes the challenge behind token; ErrNoChallenge when
// another request already did (it was used once).
func (s *Service) endChallenge(ctx context.Context, token string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM login_challenges WHERE token_hash = $1 AND expires_at > $2`, HashToken(token), s.cfg.Now())
	if err != nil {
		return fmt.Errorf("accounts: end challenge: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNoChallenge
	}
	return nil
}

// withAMR adds the references of a second factor to those of the first and
// "mfa" once two distinct kinds were passed.
func withAMR(first []string, more ...string) []string {
	out := slices.Clone(first)
	for _, m := range more {
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	if len(out) >= 2 && !slices.Contains(out, AMRMulti) {
		out = append(out, AMRMulti)
	}
	return out
}

// guardFactor runs verify under the login backoff of the user's account,
// kept apart from the password's (throttleKey.secondFactor): refused while
// throttled, a rejection counts as a failure (the first that locks the
// account's second factor mails the owner), a success clears this
// address's second-factor failures.
func (s *Service) guardFactor(ctx context.Context, userID string, verify func() error) error {
	u, err := s.User(ctx, userID)
	if err != nil {
		return err
	}
	if u.Disabled {
		return ErrNoChallenge
	}
	key := keyFor(ctx, u.Email).secondFactor()
	// One guess per account at a time: guesses sent at once would each pass
	// the check before any is counted. The others are answered "try again"
	// rather than queued, and the claim is a leased row, not a held lock, so
	// a burst holds no connections.
	release, mine, err := s.claimGuess(ctx, key)
	if err != nil {
		return err
	}
	if !mine {
		return &ThrottledError{RetryAfter: time.Second}
	}
	defer release()
	if err := s.checkThrottle(ctx, key); err != nil {
		return err
	}
	err = verify()
	switch {
	case errors.Is(err, ErrFactorRejected):
		if n := s.recordFailure(ctx, key); n == s.cfg.Throttle.FactorAccountFree+1 {
			// The first account-wide lock: someone holds the password.
			if err := s.queueMail(ctx, s.pool, mail.FactorGuessed, u.Email, mail.Data{Name: greeting(u)}); err != nil {
				s.log.Warn("mail about second-factor guessing", zap.Error(err))
			}
		}
	case err == nil:
		s.clearFailures(ctx, key)
	}
	return err
}

// factorChanged audits a change of the user's factors and mails the user
// about it, in q (the change's transaction).
func (s *Service) factorChanged(ctx context.Context, q storage.Querier, origin audit.Event, u *User, typ, factor, action string) error {
	if err := audit.Record(ctx, q, s.log, auditWith(origin, typ, "user", u.ID, map[string]any{"factor": factor})); err != nil {
		return err
	}
	return s.queueMail(ctx, q, mail.FactorChanged, u.Email, mail.Data{Name: greeting(u), Factor: factor, Action: action})
}

// selfOrigin is the audit origin of a change the user made.
func selfOrigin(userID string) audit.Event {
	return audit.Event{ActorType: audit.ActorUser, ActorID: userID}
}

// ResetFactors removes every second factor of the user (an admin's
// recovery for a user who lost them), ends the user's sessions and pending
// logins, audits the reset with origin and mails the user, in one
// transaction; then revokes the user's OAuth tokens. Errors: ErrNotFound.
func (s *Service) ResetFactors(ctx context.Context, origin audit.Event, userID string) error {
	if !uuidRE.MatchString(userID) {
		return ErrNotFound
	}
	u, err := s.User(ctx, userID)
	if err != nil {
		return err
	}
	err = storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		for _, f := range s.factors {
			if err := f.Reset(ctx, tx, userID); err != nil {
				return fmt.Errorf("accounts: reset %s of %s: %w", f.Method(), userID, err)
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM login_challenges WHERE user_id = $1`, userID); err != nil {
			return err
		}
		if err := s.RevokeUserSessions(ctx, tx, userID, ""); err != nil {
			return err
		}
		return s.factorChanged(ctx, tx, origin, u, "user.mfa_reset", "all", "removed")
	})
	if err != nil {
		return err
	}
	return s.revokeTokens(ctx, userID)
}

// PassEnrolChallenge completes the enrolment a pending login of purpose
// ChallengeEnrol waits for: code confirms the authenticator app begun with
// BeginTOTP. It ends the challenge and returns it, the amr of the new
// session and the recovery codes (shown once). Wrong codes count towards
// the login backoff. Errors: ErrNoChallenge, ErrNotEnrolling,
// ErrFactorRejected, *ThrottledError.
func (s *Service) PassEnrolChallenge(ctx context.Context, token, code string) (*Challenge, []string, []string, error) {
	ch, err := s.ChallengeByToken(ctx, token)
	if err != nil {
		return nil, nil, nil, err
	}
	if ch.Purpose != ChallengeEnrol {
		return nil, nil, nil, ErrNoChallenge
	}
	u, err := s.User(ctx, ch.UserID)
	if err != nil {
		return nil, nil, nil, err
	}
	var codes []string
	err = s.guardFactor(ctx, ch.UserID, func() error {
		var err error
		codes, err = s.ConfirmTOTP(ctx, u, code)
		return err
	})
	if err != nil {
		return nil, nil, nil, err
	}
	if err := s.endChallenge(ctx, token); err != nil {
		return nil, nil, nil, err
	}
	return ch, withAMR(ch.AMR, AMROTP), codes, nil
}
