package accounts

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/authd/authd/storage"
)

// TOTP (RFC 6238): 6 digits, 30-second steps, SHA-1, the parameters every
// authenticator app supports. A code is accepted for the current step and
// one step either side (clock drift), and only for a step later than the
// last accepted one, so a code is never accepted twice.
const (
	totpPeriod = 30
	totpSkew   = 1
	// RecoveryCodeCount is how many recovery codes a user gets at a time.
	RecoveryCodeCount = 10
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// TOTPEnrolment is a pending TOTP enrolment, as the enrolment page shows it.
type TOTPEnrolment struct {
	Secret string // base32, for typing into an app
	URL    string // otpauth:// URI
	// QR is the URI as a PNG data: URI for an <img>.
	QR string
}

// BeginTOTP starts (or restarts) the user's TOTP enrolment: a new secret,
// stored encrypted and unconfirmed until ConfirmTOTP. Errors:
// ErrAlreadyEnrolled.
func (s *Service) BeginTOTP(ctx context.Context, u *User) error {
	if s.cfg.Links == nil {
		return errors.New("accounts: TOTP needs a sealer (Config.Links) for its secrets")
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: s.totpIssuer(), AccountName: u.Email, Period: totpPeriod,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, SecretSize: 20})
	if err != nil {
		return fmt.Errorf("accounts: generate TOTP secret: %w", err)
	}
	sealed := s.cfg.Links.SealSecret("totp", key.Secret(), u.ID)
	tag, err := s.pool.Exec(ctx, `INSERT INTO user_totp (user_id, secret_sealed) VALUES ($1, $2)
		ON CONFLICT (user_id) DO UPDATE SET secret_sealed = EXCLUDED.secret_sealed, created_at = now(), last_step = 0
		WHERE user_totp.confirmed_at IS NULL`, u.ID, sealed)
	if err != nil {
		return fmt.Errorf("accounts: store TOTP secret of %s: %w", u.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrAlreadyEnrolled
	}
	return nil
}

// PendingTOTP returns the user's unconfirmed enrolment, or ErrNotEnrolling.
func (s *Service) PendingTOTP(ctx context.Context, u *User) (*TOTPEnrolment, error) {
	secret, confirmed, _, err := s.totpSecret(ctx, s.pool, u.ID, false)
	if errors.Is(err, ErrNotEnrolled) || (err == nil && confirmed) {
		return nil, ErrNotEnrolling
	}
	if err != nil {
		return nil, err
	}
	key, err := otp.NewKeyFromURL((&url.URL{Scheme: "otpauth", Host: "totp", Path: "/" + s.totpIssuer() + ":" + u.Email,
		RawQuery: url.Values{"secret": {secret}, "issuer": {s.totpIssuer()}, "period": {"30"}, "digits": {"6"}, "algorithm": {"SHA1"}}.Encode()}).String())
	if err != nil {
		return nil, fmt.Errorf("accounts: TOTP URI: %w", err)
	}
	img, err := key.Image(240, 240)
	if err != nil {
		return nil, fmt.Errorf("accounts: TOTP QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("accounts: TOTP QR code: %w", err)
	}
	return &TOTPEnrolment{Secret: secret, URL: key.URL(),
		QR: "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())}, nil
}

// totpIssuer labels the account in authenticator apps: authd's host.
func (s *Service) totpIssuer() string {
	if u, err := url.Parse(s.cfg.BaseURL); err == nil && u.Host != "" {
		return u.Host
	}
	return "authd"
}

// ConfirmTOTP completes the enrolment with one valid code and returns the
// user's new recovery codes (shown once; the old ones end). It audits and
// mails the change. Errors: ErrNotEnrolling, ErrFactorRejected.
func (s *Service) ConfirmTOTP(ctx context.Context, u *User, code string) ([]string, error) {
	var codes []string
	err := storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		secret, confirmed, last, err := s.totpSecret(ctx, tx, u.ID, true)
		if errors.Is(err, ErrNotEnrolled) || (err == nil && confirmed) {
			return ErrNotEnrolling
		}
		if err != nil {
			return err
		}
		step, ok := matchTOTP(secret, code, s.cfg.Now(), last)
		if !ok {
			return ErrFactorRejected
		}
		if _, err := tx.Exec(ctx, `UPDATE user_totp SET confirmed_at = $2, last_step = $3 WHERE user_id = $1`, u.ID, s.cfg.Now(), step); err != nil {
			return err
		}
		if codes, err = replaceRecoveryCodes(ctx, tx, u.ID); err != nil {
			return err
		}
		return s.factorChanged(ctx, tx, selfOrigin(u.ID), u, "user.mfa_added", MethodTOTP, "added")
	})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// RemoveTOTP removes the user's authenticator app (and the recovery codes
// that back it up when no other factor remains), after proof. Errors:
// ErrNotEnrolled, ErrWrongPassword, ErrReauthRequired.
func (s *Service) RemoveTOTP(ctx context.Context, u *User, proof Proof) error {
	if err := s.checkProof(ctx, u, proof); err != nil {
		return err
	}
	return storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM user_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL`, u.ID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotEnrolled
		}
		if err := s.dropOrphanRecoveryCodes(ctx, tx, u.ID); err != nil {
			return err
		}
		return s.factorChanged(ctx, tx, selfOrigin(u.ID), u, "user.mfa_removed", MethodTOTP, "removed")
	})
}

// dropOrphanRecoveryCodes deletes the recovery codes when no factor they
// could back up remains (checked after the removal, in tx).
func (s *Service) dropOrphanRecoveryCodes(ctx context.Context, tx pgx.Tx, userID string) error {
	for _, f := range s.factors {
		if f.Method() == MethodRecovery || f.Method() == MethodTOTP {
			continue
		}
		if ok, err := f.Enrolled(ctx, userID); err != nil || ok {
			return err
		}
	}
	_, err := tx.Exec(ctx, `DELETE FROM user_recovery_codes WHERE user_id = $1`, userID)
	return err
}

// RegenerateRecoveryCodes replaces the user's recovery codes (after proof)
// and returns the new ones, shown once. Errors: ErrNotEnrolled (no second
// factor to back up), ErrWrongPassword, ErrReauthRequired.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, u *User, proof Proof) ([]string, error) {
	if err := s.checkProof(ctx, u, proof); err != nil {
		return nil, err
	}
	methods, err := s.Factors(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	if !HasSecondFactor(methods) {
		return nil, ErrNotEnrolled
	}
	var codes []string
	err = storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		if codes, err = replaceRecoveryCodes(ctx, tx, u.ID); err != nil {
			return err
		}
		return s.factorChanged(ctx, tx, selfOrigin(u.ID), u, "user.recovery_codes_regenerated", MethodRecovery, "replaced")
	})
	return codes, err
}

// RecoveryCodesLeft counts the user's unused recovery codes.
func (s *Service) RecoveryCodesLeft(ctx context.Context, userID string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM user_recovery_codes WHERE user_id = $1 AND used_at IS NULL`, userID).Scan(&n)
	return n, err
}

// totpSecret reads and decrypts the user's TOTP secret; lock takes the row
// lock in a transaction. Errors: ErrNotEnrolled.
func (s *Service) totpSecret(ctx context.Context, q storage.Querier, userID string, lock bool) (secret string, confirmed bool, lastStep int64, err error) {
	if s.cfg.Links == nil {
		return "", false, 0, errors.New("accounts: TOTP needs a sealer (Config.Links) for its secrets")
	}
	sql := `SELECT secret_sealed, confirmed_at IS NOT NULL, last_step FROM user_totp WHERE user_id = $1`
	if lock {
		sql += ` FOR UPDATE`
	}
	var sealed string
	err = q.QueryRow(ctx, sql, userID).Scan(&sealed, &confirmed, &lastStep)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, 0, ErrNotEnrolled
	}
	if err != nil {
		return "", false, 0, fmt.Errorf("accounts: read TOTP of %s: %w", userID, err)
	}
	secret, err = s.cfg.Links.OpenSecret("totp", sealed, userID)
	return secret, confirmed, lastStep, err
}

// matchTOTP returns the time step whose code equals code, within the skew
// and later than last.
func matchTOTP(secret, code string, now time.Time, last int64) (int64, bool) {
	code = strings.TrimSpace(code)
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		return 0, false
	}
	cur := now.Unix() / totpPeriod
	found, match := int64(0), false
	for step := cur - totpSkew; step <= cur+totpSkew; step++ {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(step*totpPeriod, 0), totpOpts)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && step > last {
			found, match = step, true
		}
	}
	return found, match
}

// totpFactor is the authenticator-app factor.
type totpFactor struct{ s *Service }

func (totpFactor) Method() string { return MethodTOTP }
func (totpFactor) AMR() []string  { return []string{AMROTP} }

func (f totpFactor) Enrolled(ctx context.Context, userID string) (bool, error) {
	var ok bool
	err := f.s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM user_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL)`, userID).Scan(&ok)
	return ok, err
}

func (totpFactor) Prepare(context.Context, *Challenge) (any, error) { return nil, nil }

// Verify accepts a code of a step later than the last accepted one; the
// step is recorded under the row lock, so of two requests with one code,
// one wins.
func (f totpFactor) Verify(ctx context.Context, ch *Challenge, form url.Values) error {
	return storage.InTx(ctx, f.s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		secret, confirmed, last, err := f.s.totpSecret(ctx, tx, ch.UserID, true)
		if errors.Is(err, ErrNotEnrolled) || (err == nil && !confirmed) {
			return ErrFactorRejected
		}
		if err != nil {
			return err
		}
		step, ok := matchTOTP(secret, form.Get("code"), f.s.cfg.Now(), last)
		if !ok {
			return ErrFactorRejected
		}
		tag, err := tx.Exec(ctx, `UPDATE user_totp SET last_step = $2 WHERE user_id = $1 AND last_step < $2`, ch.UserID, step)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrFactorRejected // its step was used meanwhile
		}
		return nil
	})
}

func (totpFactor) Reset(ctx context.Context, q storage.Querier, userID string) error {
	_, err := q.Exec(ctx, `DELETE FROM user_totp WHERE user_id = $1`, userID)
	return err
}

// recoveryFactor is the single-use recovery codes.
type recoveryFactor struct{ s *Service }

func (recoveryFactor) Method() string { return MethodRecovery }

// AMR: a recovery code is a one-time password (RFC 8176 has nothing closer).
func (recoveryFactor) AMR() []string { return []string{AMROTP} }

func (f recoveryFactor) Enrolled(ctx context.Context, userID string) (bool, error) {
	n, err := f.s.RecoveryCodesLeft(ctx, userID)
	return n > 0, err
}

func (recoveryFactor) Prepare(context.Context, *Challenge) (any, error) { return nil, nil }

// Verify spends one code: the UPDATE both checks and uses it, so a code
// works exactly once however many requests race with it.
func (f recoveryFactor) Verify(ctx context.Context, ch *Challenge, form url.Values) error {
	code := normalizeRecoveryCode(form.Get("code"))
	if code == "" {
		return ErrFactorRejected
	}
	tag, err := f.s.pool.Exec(ctx, `UPDATE user_recovery_codes SET used_at = now()
		WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL`, ch.UserID, HashToken(code))
	if err != nil {
		return fmt.Errorf("accounts: use recovery code: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrFactorRejected
	}
	u, err := f.s.User(ctx, ch.UserID)
	if err != nil {
		return err
	}
	// Using one is worth telling the owner: it may be someone else.
	return f.s.factorChanged(ctx, f.s.pool, selfOrigin(ch.UserID), u, "user.recovery_code_used", MethodRecovery, "used")
}

func (recoveryFactor) Reset(ctx context.Context, q storage.Querier, userID string) error {
	_, err := q.Exec(ctx, `DELETE FROM user_recovery_codes WHERE user_id = $1`, userID)
	return err
}

// recoveryEncoding is Crockford's base32: no I, L, O or U, which read like
// 1, 0 or V.
var recoveryEncoding = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// newRecoveryCode returns 80 random bits as XXXX-XXXX-XXXX-XXXX.
func newRecoveryCode() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	s := recoveryEncoding.EncodeToString(b)
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
}

// normalizeRecoveryCode accepts a code as typed: any case, with or without
// dashes and spaces.
func normalizeRecoveryCode(s string) string {
	if len(s) > 64 {
		return ""
	}
	s = strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(strings.TrimSpace(s)))
	if len(s) != 16 {
		return ""
	}
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
}

// replaceRecoveryCodes ends the user's codes and stores RecoveryCodeCount
// new ones (hashed), returned once.
func replaceRecoveryCodes(ctx context.Context, tx pgx.Tx, userID string) ([]string, error) {
	if _, err := tx.Exec(ctx, `DELETE FROM user_recovery_codes WHERE user_id = $1`, userID); err != nil {
		return nil, err
	}
	codes := make([]string, RecoveryCodeCount)
	for i := range codes {
		codes[i] = newRecoveryCode()
		if _, err := tx.Exec(ctx, `INSERT INTO user_recovery_codes (user_id, code_hash) VALUES ($1, $2)`, userID, HashToken(codes[i])); err != nil {
			return nil, fmt.Errorf("accounts: store recovery codes: %w", err)
		}
	}
	return codes, nil
}
