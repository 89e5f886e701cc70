package federation

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/internal/ratelimit"
	loginui "github.com/authd/authd/login-ui"
	"github.com/authd/authd/storage"
)

// Errors of logins and links through an upstream.
var (
	// ErrIdentityTaken: the upstream identity is linked to another account.
	ErrIdentityTaken = errors.New("federation: this identity is linked to another account")
	// ErrLastLogin: unlinking would leave the account no way to log in.
	ErrLastLogin = errors.New("federation: the only way left to log in to this account")
	// ErrNoIdentity: no such linked identity on this account.
	ErrNoIdentity = errors.New("federation: no such linked identity")
)

// Config is the Service's settings.
type Config struct {
	// BaseURL is authd's public URL (AUTHD_ISSUER): callbacks live under it.
	BaseURL string
	// Timeout bounds every call to an upstream (AUTHD_UPSTREAM_TIMEOUT; 10s).
	Timeout time.Duration
	// FlowTTL is how long a started login may take upstream (10m).
	FlowTTL time.Duration
	// Limit bounds upstream logins started and password proofs per client
	// address; nil does not limit.
	Limit *ratelimit.Limiter
	Now   func() time.Time
}

// Service runs logins through upstream providers and the linking of their
// identities. Create it with New.
type Service struct {
	Providers *Registry
	accts     *accounts.Service
	ui        *loginui.UI
	cookies   *accounts.LinkSealer
	client    *client
	cfg       Config
	log       *zap.Logger
	login     Finisher // set by Mount
}

// New returns the service. cookies seals the browser-bound flow cookies
// (a sealer keyed from AUTHD_SECRETS_KEY for this purpose alone).
func New(reg *Registry, accts *accounts.Service, ui *loginui.UI, cookies *accounts.LinkSealer, log *zap.Logger, cfg Config) *Service {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.FlowTTL <= 0 {
		cfg.FlowTTL = 10 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if log == nil {
		log = zap.NewNop()
	}
	return &Service{Providers: reg, accts: accts, ui: ui, cookies: cookies, client: newClient(cfg.Timeout), cfg: cfg, log: log}
}

func (s *Service) callback(p *Provider) string { return s.cfg.BaseURL + CallbackPath(p.Slug) }

// flowState is a login in progress upstream, kept sealed in a cookie of the
// browser that started it: nothing is stored server-side before the
// upstream answers, and another browser cannot finish it.
type flowState struct {
	Provider string `json:"p"`
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	ReturnTo string `json:"r"`
	// LinkUser is the logged-in user who asked to link an identity from
	// /account ("" for a login).
	LinkUser string `json:"l,omitempty"`
	Expires  int64  `json:"e"`
}

// pendingLink is a verified upstream identity waiting for the person to
// prove the account it would be linked to; sealed in a cookie.
type pendingLink struct {
	Identity Identity `json:"i"`
	UserID   string   `json:"u"`
	ReturnTo string   `json:"r"`
	Expires  int64    `json:"e"`
}

const (
	flowCookie = "authd_fed"
	linkCookie = "authd_fed_link"
)

func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// seal and open put a value in a cookie; the cookie's name is bound in, so
// one cookie's value cannot be replayed as the other.
func (s *Service) seal(name string, v any) string {
	b, _ := json.Marshal(v)
	return s.cookies.Seal(string(b), "federation cookie\x00"+name)
}

func (s *Service) open(name, sealed string, v any, expires func() int64) bool {
	if sealed == "" || len(sealed) > 8192 {
		return false
	}
	pt, err := s.cookies.Open(sealed, "federation cookie\x00"+name)
	if err != nil || json.Unmarshal([]byte(pt), v) != nil {
		return false
	}
	return s.cfg.Now().Unix() < expires()
}

// outcome is what a verified upstream identity leads to.
type outcome struct {
	user *accounts.User // log in as this user
	// prove: link to this account once the person proves it.
	prove *accounts.User
	// refused: a sentence for the person; code for the error page.
	refused, code string
}

// resolve decides what a verified identity may do. This is the one place
// that decides whether an upstream identity reaches an account.
func (s *Service) resolve(ctx context.Context, p *Provider, id *Identity, linkUser string) (outcome, error) {
	uid, err := s.identityUser(ctx, id.ProviderID, id.Subject)
	if err != nil && !errors.Is(err, ErrNoIdentity) {
		return outcome{}, err
	}
	if err == nil { // a linked identity
		if linkUser != "" && linkUser != uid {
			return outcome{refused: "This " + p.DisplayName + " account is already linked to another account.", code: "identity_taken"}, nil
		}
		u, err := s.accts.User(ctx, uid)
		if err != nil {
			return outcome{}, err
		}
		if u.Disabled {
			return outcome{refused: "This account is disabled.", code: "account_disabled"}, nil
		}
		if _, err := s.Providers.pool.Exec(ctx, `UPDATE user_identities SET last_login_at = now() WHERE provider_id = $1 AND subject = $2`, id.ProviderID, id.Subject); err != nil {
			return outcome{}, err
		}
		return outcome{user: u}, nil
	}
	if linkUser != "" { // asked from /account: prove it is still you
		u, err := s.accts.User(ctx, linkUser)
		if err != nil {
			return outcome{}, err
		}
		return outcome{prove: u}, nil
	}
	if id.Email == "" {
		return outcome{refused: p.DisplayName + " did not tell us your email address, so we cannot log you in with it.", code: "no_email"}, nil
	}
	existing, err := s.accts.UserByEmail(ctx, id.Email)
	switch {
	case err == nil:
		// Never linked silently: the person must prove the account, and
		// an address the upstream did not verify proves nothing at all.
		if !id.EmailVerified {
			return outcome{refused: "An account with this email address exists, and " + p.DisplayName +
				" has not verified that the address is yours. Log in with your password, then link " + p.DisplayName + " from your account page.", code: "email_unverified"}, nil
		}
		if existing.Disabled {
			return outcome{refused: "This account is disabled.", code: "account_disabled"}, nil
		}
		return outcome{prove: existing}, nil
	case !errors.Is(err, accounts.ErrNotFound):
		return outcome{}, err
	}
	if !p.AllowSignup {
		return outcome{refused: "There is no account for this " + p.DisplayName + " login. Log in with your password and link " +
			p.DisplayName + " from your account page, or ask an administrator.", code: "signup_disabled"}, nil
	}
	u, err := s.accts.RegisterUpstream(ctx, accounts.UpstreamRegistration{
		Email: id.Email, EmailVerified: id.EmailVerified, Name: id.Name, Roles: id.Roles,
	}, func(tx pgx.Tx, u *accounts.User) error {
		if err := insertIdentity(ctx, tx, u.ID, id); err != nil {
			return err
		}
		return s.auditLink(ctx, tx, u.ID, id, "signup", nil)
	})
	var pe *accounts.PolicyError
	switch {
	case errors.Is(err, accounts.ErrEmailTaken):
		// Registered meanwhile: decide again, as for an existing account.
		return s.resolve(ctx, p, id, "")
	case errors.As(err, &pe):
		return outcome{refused: "The email address " + p.DisplayName + " gave us cannot be used here.", code: "invalid_email"}, nil
	case errors.Is(err, accounts.ErrUnknownRole):
		return outcome{}, fmt.Errorf("federation: provider %s grants a role that does not exist: %w", p.Slug, err)
	case err != nil:
		return outcome{}, err
	}
	return outcome{user: u}, nil
}

// identityUser returns the user an identity is linked to; ErrNoIdentity.
func (s *Service) identityUser(ctx context.Context, providerID, subject string) (string, error) {
	var uid string
	err := s.Providers.pool.QueryRow(ctx, `SELECT user_id FROM user_identities WHERE provider_id = $1 AND subject = $2`, providerID, subject).Scan(&uid)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNoIdentity
	}
	return uid, err
}

// insertIdentity links id to userID; ErrIdentityTaken when it is another's.
func insertIdentity(ctx context.Context, q storage.Querier, userID string, id *Identity) error {
	var owner string
	err := q.QueryRow(ctx, `INSERT INTO user_identities (provider_id, subject, user_id, email, last_login_at)
		VALUES ($1, $2, $3, $4, now())
		ON CONFLICT (provider_id, subject) DO UPDATE SET last_login_at = now() WHERE user_identities.user_id = $3
		RETURNING user_id`, id.ProviderID, id.Subject, userID, id.Email).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrIdentityTaken
	}
	if err != nil {
		return fmt.Errorf("federation: link identity: %w", err)
	}
	return nil
}

func (s *Service) auditLink(ctx context.Context, q storage.Querier, userID string, id *Identity, method string, origin *audit.Event) error {
	e := audit.Event{}
	if origin != nil {
		e = *origin
	}
	e.Type, e.ActorType, e.ActorID, e.TargetType, e.TargetID = "user.identity_linked", audit.ActorUser, userID, "user", userID
	e.Details = map[string]any{"provider_id": id.ProviderID, "proof": method}
	return audit.Record(ctx, q, s.log, e)
}

// link records a proven link in one transaction with its audit event.
// consume, when set, uses the mailed proof in the same transaction.
func (s *Service) link(ctx context.Context, origin audit.Event, userID string, id *Identity, method string, consume func(tx pgx.Tx) (string, error)) error {
	return storage.InTx(ctx, s.Providers.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		if consume != nil {
			uid, err := consume(tx)
			if err != nil {
				return err
			}
			if uid != userID {
				return accounts.ErrInvalidToken
			}
		}
		if err := insertIdentity(ctx, tx, userID, id); err != nil {
			return err
		}
		return s.auditLink(ctx, tx, userID, id, method, &origin)
	})
}

// LinkedIdentity is one upstream identity of a user, as /account lists it.
type LinkedIdentity struct {
	ProviderID, Slug, Provider, Subject, Email string
	CreatedAt                                  time.Time
	LastLoginAt                                *time.Time
}

// Identities lists a user's linked identities.
func (s *Service) Identities(ctx context.Context, userID string) ([]LinkedIdentity, error) {
	rows, err := s.Providers.pool.Query(ctx, `SELECT i.provider_id, p.slug, p.display_name, i.subject, i.email, i.created_at, i.last_login_at
		FROM user_identities i JOIN upstream_providers p ON p.id = i.provider_id WHERE i.user_id = $1 ORDER BY p.display_name, i.created_at`, userID)
	if err != nil {
		return nil, fmt.Errorf("federation: identities of %s: %w", userID, err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (LinkedIdentity, error) {
		var x LinkedIdentity
		err := row.Scan(&x.ProviderID, &x.Slug, &x.Provider, &x.Subject, &x.Email, &x.CreatedAt, &x.LastLoginAt)
		return x, err
	})
}

// Unlink removes one of the user's identities unless it is the last way to
// log in (no password and no other identity). It returns ErrNoIdentity and
// ErrLastLogin.
func (s *Service) Unlink(ctx context.Context, origin audit.Event, userID, providerID, subject string) error {
	if !uuidRE.MatchString(providerID) {
		return ErrNoIdentity
	}
	return storage.InTx(ctx, s.Providers.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		// Serialise with other unlinks (and password changes) of the user.
		var hasPassword bool
		err := tx.QueryRow(ctx, `SELECT password_hash <> '' FROM users WHERE id = $1 FOR UPDATE`, userID).Scan(&hasPassword)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNoIdentity
		}
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM user_identities WHERE user_id = $1`, userID).Scan(&n); err != nil {
			return err
		}
		if !hasPassword && n <= 1 {
			return ErrLastLogin
		}
		tag, err := tx.Exec(ctx, `DELETE FROM user_identities WHERE user_id = $1 AND provider_id = $2 AND subject = $3`, userID, providerID, subject)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNoIdentity
		}
		e := origin
		e.Type, e.ActorType, e.ActorID, e.TargetType, e.TargetID = "user.identity_unlinked", audit.ActorUser, userID, "user", userID
		e.Details = map[string]any{"provider_id": providerID}
		return audit.Record(ctx, tx, s.log, e)
	})
}
