// Package accounts owns authd's users: passwords, roles, browser sessions,
// registration, email verification, password reset, the outbox of events
// and mail, and the admin operations on users.
package accounts

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/authd/authd/internal/notifycache"
	"github.com/authd/authd/storage"
)

// Errors returned by the accounts service.
var (
	ErrNotFound           = errors.New("accounts: user not found")
	ErrEmailTaken         = errors.New("accounts: email already registered")
	ErrInvalidCredentials = errors.New("accounts: invalid email or password")
	ErrUserDisabled       = errors.New("accounts: user is disabled")
	ErrUnknownRole        = errors.New("accounts: unknown role")
	ErrInvalidRole        = errors.New("accounts: invalid role name")
	ErrInvalidEmail       = errors.New("accounts: invalid email address")
	ErrInvalidToken       = errors.New("accounts: invalid or expired link")
	ErrWrongPassword      = errors.New("accounts: current password is wrong")
	ErrTooSoon            = errors.New("accounts: please wait before asking again")
	// ErrReauthRequired means the change needs the current password or a
	// login no older than Config.RecentAuth.
	ErrReauthRequired = errors.New("accounts: confirm with your current password or log in again")
)

// User is an account holder.
type User struct {
	ID            string `json:"id"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	Name          string `json:"name"`
	// PendingEmail is a new address waiting for verification; login and
	// password reset keep using Email until it is verified.
	PendingEmail string    `json:"pending_email,omitempty"`
	Disabled     bool      `json:"disabled"`
	Roles        []string  `json:"roles"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	passwordHash string
}

// Config holds the accounts service's settings. The zero value of each field
// picks the documented default.
type Config struct {
	DefaultRole string // given to every new user (AUTHD_DEFAULT_ROLE; "user")
	// SessionMaxAge is a browser session's absolute lifetime
	// (AUTHD_SESSION_MAX_AGE; 14 days), SessionIdleTimeout how long it
	// survives unused (AUTHD_SESSION_IDLE_TIMEOUT; 24h).
	SessionMaxAge      time.Duration
	SessionIdleTimeout time.Duration
	// RecentAuth is how recent a login must be to change the email or the
	// password without typing the current password (5m).
	RecentAuth time.Duration
	// EmailChanges bounds the email changes one user may start per hour (3).
	EmailChanges int
	Now          func() time.Time
	// BaseURL is authd's public URL (AUTHD_ISSUER), the base of links in mail.
	BaseURL string
	// Webhooks, when true (AUTHD_WEBHOOK_URL set), queues user.* events in the
	// outbox for the Worker; when false no event rows are written.
	Webhooks       bool
	VerifyTTL      time.Duration // email verification link lifetime (24h)
	ResetTTL       time.Duration // password reset link lifetime (1h)
	ResendInterval time.Duration // minimum gap between verification mails to one user (1m)
	Throttle       ThrottleConfig
	// Revoker revokes a user's OAuth tokens on password reset; nil skips it.
	Revoker TokenRevoker
	// Logouts names the relying parties to send back-channel logout tokens
	// when sessions end; nil queues none.
	Logouts LogoutAudience
	// Links, when set, encrypts the token-bearing links of queued mail; the
	// Worker needs the same sealer (WorkerConfig.Links) to send them.
	Links *LinkSealer
	// Metrics counts logins, registrations, verifications and resets; nil
	// counts nothing.
	Metrics *Metrics
	// MFARequiredRoles (AUTHD_MFA_REQUIRED_ROLES): a user holding any of
	// them must pass a second factor at every login, and enrols one right
	// after the password when they have none.
	MFARequiredRoles []string
	// Factors are second-factor methods beyond the built-in TOTP and
	// recovery codes (mfa.go, SecondFactor).
	Factors []SecondFactor
}

// TokenRevoker revokes every refresh and access token issued for a user.
// *fositestore.Store implements it.
type TokenRevoker interface {
	RevokeSubject(ctx context.Context, userID string) error
}

// Service is the accounts module. It is safe for concurrent use.
type Service struct {
	pool   *pgxpool.Pool
	hasher *PasswordHasher
	policy *PasswordPolicy
	log    *zap.Logger
	cfg    Config
	access *notifycache.Cache[*Access] // usercache.go
	// factors are the second-factor methods, built-ins first (mfa.go).
	factors []SecondFactor
}

// New returns the accounts service.
func New(pool *pgxpool.Pool, hasher *PasswordHasher, log *zap.Logger, cfg Config) *Service {
	if cfg.DefaultRole == "" {
		cfg.DefaultRole = "user"
	}
	if cfg.SessionMaxAge <= 0 {
		cfg.SessionMaxAge = 14 * 24 * time.Hour
	}
	if cfg.SessionIdleTimeout <= 0 {
		cfg.SessionIdleTimeout = 24 * time.Hour
	}
	if cfg.RecentAuth <= 0 {
		cfg.RecentAuth = 5 * time.Minute
	}
	if cfg.EmailChanges <= 0 {
		cfg.EmailChanges = 3
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "http://localhost:8080"
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.VerifyTTL == 0 {
		cfg.VerifyTTL = 24 * time.Hour
	}
	if cfg.ResetTTL == 0 {
		cfg.ResetTTL = time.Hour
	}
	if cfg.ResendInterval == 0 {
		cfg.ResendInterval = time.Minute
	}
	cfg.Throttle = cfg.Throttle.withDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	s := &Service{pool: pool, hasher: hasher, policy: NewPasswordPolicy(), log: log, cfg: cfg, access: newAccessCache()}
	s.factors = append([]SecondFactor{totpFactor{s}, recoveryFactor{s}}, cfg.Factors...)
	return s
}

// Hasher returns the password hasher (for benchmarks and the CLI).
func (s *Service) Hasher() *PasswordHasher { return s.hasher }

// Metrics returns the service's metrics (nil when none were configured;
// a nil *Metrics records nothing), for callers that count login attempts
// they refuse before Authenticate runs.
func (s *Service) Metrics() *Metrics { return s.cfg.Metrics }

// Policy returns the password policy.
func (s *Service) Policy() *PasswordPolicy { return s.policy }

// NormalizeEmail trims and lower-cases an address and checks its syntax.
func NormalizeEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	if len(e) > 254 {
		return "", fmt.Errorf("%w: longer than 254 characters", ErrInvalidEmail)
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || !strings.Contains(e, "@") {
		return "", fmt.Errorf("%w: %q", ErrInvalidEmail, email)
	}
	return e, nil
}

// NewUser describes a user to create.
type NewUser struct {
	Email    string
	Password string
	Name     string
	Roles    []string // in addition to the default role
	Verified bool
	// NoPassword creates an account without a password (an upstream
	// provider's login): Password is ignored and no password matches.
	NoPassword bool
}

// HasPassword reports whether the user can log in with a password.
func (u *User) HasPassword() bool { return u.passwordHash != "" }

// CreateUser creates a user with the default role plus u.Roles. fn, when not
// nil, runs in the same transaction (registration uses it for its outbox row).
func (s *Service) CreateUser(ctx context.Context, u NewUser, fn func(tx pgx.Tx, created *User) error) (*User, error) {
	email, err := NormalizeEmail(u.Email)
	if err != nil {
		return nil, err
	}
	hash := "" // Verify matches no password against an empty hash
	if !u.NoPassword {
		if hash, err = s.hasher.Hash(ctx, u.Password); err != nil {
			return nil, err
		}
	}
	roles := append([]string{s.cfg.DefaultRole}, u.Roles...)
	for _, r := range roles {
		if !ValidRoleName(r) {
			return nil, fmt.Errorf("%w: %q", ErrInvalidRole, r)
		}
	}
	var out *User
	err = storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		out = &User{Email: email, Name: u.Name, EmailVerified: u.Verified}
		err := tx.QueryRow(ctx, `INSERT INTO users (email, name, password_hash, email_verified)
			VALUES ($1, $2, $3, $4) RETURNING id, created_at, updated_at`,
			email, u.Name, hash, u.Verified).Scan(&out.ID, &out.CreatedAt, &out.UpdatedAt)
		if storage.IsUniqueViolation(err, "users_email_key") {
			return ErrEmailTaken
		}
		if err != nil {
			return fmt.Errorf("accounts: insert user %s: %w", email, err)
		}
		for _, r := range roles {
			if err := addRole(ctx, tx, out.ID, r); err != nil {
				return err
			}
		}
		if out.Roles, err = rolesOf(ctx, tx, out.ID); err != nil {
			return err
		}
		if fn != nil {
			return fn(tx, out)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

const userColumns = `id, email, email_verified, name, COALESCE(pending_email, ''), disabled, password_hash, created_at, updated_at,
	COALESCE((SELECT array_agg(role ORDER BY role) FROM user_roles WHERE user_id = users.id), '{}')`

func scanUser(row pgx.Row) (*User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Email, &u.EmailVerified, &u.Name, &u.PendingEmail, &u.Disabled, &u.passwordHash, &u.CreatedAt, &u.UpdatedAt, &u.Roles)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return &u, err
}

// uuidRE guards lookups by id so a malformed id is "not found", not a 500.
var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// User returns the user with id.
func (s *Service) User(ctx context.Context, id string) (*User, error) {
	if !uuidRE.MatchString(id) {
		return nil, ErrNotFound
	}
	return scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
}

// UserByEmail returns the user with that (normalised) email.
func (s *Service) UserByEmail(ctx context.Context, email string) (*User, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return nil, ErrNotFound
	}
	return scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1`, e))
}

// UserByEmailOrID resolves the CLI's EMAIL_OR_ID argument.
func (s *Service) UserByEmailOrID(ctx context.Context, ref string) (*User, error) {
	if uuidRE.MatchString(ref) {
		return s.User(ctx, ref)
	}
	return s.UserByEmail(ctx, ref)
}

// Authenticate checks an email and password. Unknown emails cost the same
// hash computation as wrong passwords, whatever the password's length, and
// give the same error. A correct password whose hash uses outdated
// parameters is re-hashed.
//
// Failures back off per (account, client address) and, much later, per
// account (ThrottleConfig; kept in Postgres, so it holds across replicas):
// while a lock lasts, Authenticate returns a *ThrottledError (errors.Is
// ErrThrottled) without checking the password. An address no email can have
// is refused with ErrInvalidEmail before any database work. It also returns
// ErrInvalidCredentials and ErrUserDisabled.
func (s *Service) Authenticate(ctx context.Context, email, password string) (*User, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		s.cfg.Metrics.loginResult(err)
		return nil, err
	}
	key := keyFor(ctx, e)
	if err := s.checkThrottle(ctx, key); err != nil {
		s.cfg.Metrics.loginResult(err)
		return nil, err
	}
	u, err := s.authenticate(ctx, e, password)
	switch {
	case errors.Is(err, ErrInvalidCredentials):
		s.recordFailure(ctx, key)
	case err == nil:
		s.clearFailures(ctx, key)
	}
	s.cfg.Metrics.loginResult(err)
	return u, err
}

func (s *Service) authenticate(ctx context.Context, email, password string) (*User, error) {
	u, err := s.UserByEmail(ctx, email)
	if errors.Is(err, ErrNotFound) {
		s.hasher.dummyCompare(ctx, password)
		return nil, ErrInvalidCredentials
	}
	if err != nil {
		return nil, err
	}
	ok, rehash, err := s.hasher.Verify(ctx, u.passwordHash, password)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrInvalidCredentials
	}
	if u.Disabled {
		return nil, ErrUserDisabled
	}
	if rehash {
		if h, err := s.hasher.Hash(ctx, password); err == nil {
			_, err = s.pool.Exec(ctx, `UPDATE users SET password_hash = $2 WHERE id = $1 AND password_hash = $3`, u.ID, h, u.passwordHash)
			if err != nil {
				s.log.Warn("password re-hash failed", zap.String("user_id", u.ID), zap.Error(err))
			}
		}
	}
	return u, nil
}

// SetPassword replaces a user's password hash.
func (s *Service) SetPassword(ctx context.Context, q storage.Querier, userID, password string) error {
	h, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	tag, err := q.Exec(ctx, `UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1`, userID, h)
	if err != nil {
		return fmt.Errorf("accounts: set password of %s: %w", userID, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}
