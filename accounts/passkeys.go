package accounts

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/accounts/mail"
	"github.com/authd/authd/storage"
)

// Passkey errors.
var (
	// ErrPasskeyNotFound means the user has no passkey with that id (or it
	// belongs to someone else, which the caller must not learn).
	ErrPasskeyNotFound = errors.New("accounts: passkey not found")
	// ErrPasskeyExists means the credential is already registered.
	ErrPasskeyExists = errors.New("accounts: passkey already registered")
	// ErrTooManyPasskeys means the user reached MaxPasskeys.
	ErrTooManyPasskeys = errors.New("accounts: too many passkeys")
	// ErrPasskeyRace means another login used the passkey between reading
	// and updating its counter; the later login is refused.
	ErrPasskeyRace = errors.New("accounts: passkey used concurrently")
)

// MaxPasskeys bounds the passkeys of one user: the login ceremony lists
// them all.
const MaxPasskeys = 20

// Authenticator data flag bits (WebAuthn §6.1) kept in Passkey.Flags.
const (
	PasskeyFlagUserPresent    = 0x01
	PasskeyFlagUserVerified   = 0x04
	PasskeyFlagBackupEligible = 0x08
	PasskeyFlagBackupState    = 0x10
)

// Passkey is a WebAuthn credential of a user as stored: the fields of the
// library's credential record (kept raw here, so accounts does not depend on
// the WebAuthn library) plus the name the user gave it.
type Passkey struct {
	ID                string
	UserID            string
	RPID              string
	CredentialID      []byte
	Name              string
	PublicKey         []byte
	AttestationType   string
	AttestationFormat string
	Attestation       json.RawMessage // may be nil
	Extensions        json.RawMessage // may be nil
	AAGUID            []byte
	Transports        []string
	Attachment        string
	SignCount         uint32
	CloneWarning      bool
	Flags             uint8
	Passwordless      bool
	CreatedAt         time.Time
	LastUsedAt        *time.Time
}

// BackupEligible reports whether the credential may be synced (a
// multi-device passkey).
func (p *Passkey) BackupEligible() bool { return p.Flags&PasskeyFlagBackupEligible != 0 }

// BackedUp reports whether the credential was synced when last seen.
func (p *Passkey) BackedUp() bool { return p.Flags&PasskeyFlagBackupState != 0 }

// UserVerified reports whether the authenticator verified the user (PIN,
// biometrics) when the credential was registered.
func (p *Passkey) UserVerified() bool { return p.Flags&PasskeyFlagUserVerified != 0 }

// CheckPasskeyName trims name and checks it: 1 to 64 characters, no
// control characters. It returns the trimmed name or a *PolicyError for
// field "name".
func CheckPasskeyName(name string) (string, error) {
	name = strings.TrimSpace(name)
	n := 0
	for _, r := range name {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return "", &PolicyError{Field: "name", Reason: "must not contain control characters"}
		}
		n++
	}
	if n == 0 {
		return "", &PolicyError{Field: "name", Reason: "is required"}
	}
	if n > 64 {
		return "", &PolicyError{Field: "name", Reason: "must be at most 64 characters"}
	}
	return name, nil
}

// PasskeyHandle returns the user's WebAuthn user handle, creating it (64
// random bytes) on first use.
func (s *Service) PasskeyHandle(ctx context.Context, userID string) ([]byte, error) {
	h := make([]byte, 64)
	_, _ = rand.Read(h)
	if _, err := s.pool.Exec(ctx, `INSERT INTO webauthn_users (user_id, handle) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING`, userID, h); err != nil {
		return nil, fmt.Errorf("accounts: create passkey handle of %s: %w", userID, err)
	}
	var got []byte
	if err := s.pool.QueryRow(ctx, `SELECT handle FROM webauthn_users WHERE user_id = $1`, userID).Scan(&got); err != nil {
		return nil, fmt.Errorf("accounts: read passkey handle of %s: %w", userID, err)
	}
	return got, nil
}

// UserByPasskeyHandle returns the enabled user a user handle belongs to. It
// returns ErrNotFound for an unknown handle and ErrUserDisabled.
func (s *Service) UserByPasskeyHandle(ctx context.Context, handle []byte) (*User, error) {
	if len(handle) == 0 || len(handle) > 64 {
		return nil, ErrNotFound
	}
	var id string
	err := s.pool.QueryRow(ctx, `SELECT user_id FROM webauthn_users WHERE handle = $1`, handle).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("accounts: look up passkey handle: %w", err)
	}
	u, err := s.User(ctx, id)
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, ErrUserDisabled
	}
	return u, nil
}

const passkeyColumns = `id, user_id, rp_id, credential_id, name, public_key, attestation_type, attestation_format,
	attestation, extensions, aaguid, transports, attachment, sign_count, clone_warning, flags, passwordless, created_at, last_used_at`

func scanPasskey(row pgx.Row) (*Passkey, error) {
	var p Passkey
	var count int64
	var flags int16
	if err := row.Scan(&p.ID, &p.UserID, &p.RPID, &p.CredentialID, &p.Name, &p.PublicKey, &p.AttestationType, &p.AttestationFormat,
		&p.Attestation, &p.Extensions, &p.AAGUID, &p.Transports, &p.Attachment, &count, &p.CloneWarning, &flags, &p.Passwordless,
		&p.CreatedAt, &p.LastUsedAt); err != nil {
		return nil, err
	}
	p.SignCount, p.Flags = uint32(count), uint8(flags)
	return &p, nil
}

// Passkeys lists the user's passkeys registered for rpID, oldest first.
func (s *Service) Passkeys(ctx context.Context, userID, rpID string) ([]Passkey, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+passkeyColumns+` FROM webauthn_credentials
		WHERE user_id = $1 AND rp_id = $2 ORDER BY created_at, id`, userID, rpID)
	if err != nil {
		return nil, fmt.Errorf("accounts: list passkeys of %s: %w", userID, err)
	}
	defer rows.Close()
	var out []Passkey
	for rows.Next() {
		p, err := scanPasskey(rows)
		if err != nil {
			return nil, fmt.Errorf("accounts: read passkey: %w", err)
		}
		out = append(out, *p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("accounts: list passkeys of %s: %w", userID, err)
	}
	return out, nil
}

// AddPasskey stores a newly registered passkey of p.UserID; in the same
// transaction it records the audit event and queues the "passkey added"
// mail. It returns the stored passkey, *PolicyError (field "name"),
// ErrPasskeyExists, ErrTooManyPasskeys and ErrNotFound.
func (s *Service) AddPasskey(ctx context.Context, p Passkey) (*Passkey, error) {
	name, err := CheckPasskeyName(p.Name)
	if err != nil {
		return nil, err
	}
	u, err := s.User(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	if p.Transports == nil {
		p.Transports = []string{}
	}
	var out *Passkey
	err = storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		// The user row lock serialises concurrent additions, so the cap holds.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, u.ID); err != nil {
			return fmt.Errorf("accounts: lock user %s: %w", u.ID, err)
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM webauthn_credentials WHERE user_id = $1`, u.ID).Scan(&n); err != nil {
			return fmt.Errorf("accounts: count passkeys of %s: %w", u.ID, err)
		}
		if n >= MaxPasskeys {
			return ErrTooManyPasskeys
		}
		row := tx.QueryRow(ctx, `INSERT INTO webauthn_credentials (user_id, rp_id, credential_id, name, public_key, attestation_type,
			attestation_format, attestation, extensions, aaguid, transports, attachment, sign_count, clone_warning, flags, passwordless, created_at)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,false,$14,$15,$16) RETURNING `+passkeyColumns,
			u.ID, p.RPID, p.CredentialID, name, p.PublicKey, p.AttestationType, p.AttestationFormat, nullJSON(p.Attestation),
			nullJSON(p.Extensions), p.AAGUID, p.Transports, p.Attachment, int64(p.SignCount), int16(p.Flags), p.Passwordless, s.cfg.Now())
		var err error
		if out, err = scanPasskey(row); err != nil {
			if storage.IsUniqueViolation(err, "webauthn_credentials_rp_credential_key") {
				return ErrPasskeyExists
			}
			return fmt.Errorf("accounts: add passkey of %s: %w", u.ID, err)
		}
		if err := s.auditPasskey(ctx, tx, "user.passkey_added", u.ID, out); err != nil {
			return err
		}
		return s.queueMail(ctx, tx, mail.PasskeyAdded, u.Email, mail.Data{Name: greeting(u), Factor: name})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RenamePasskey renames one of the user's passkeys. It returns
// *PolicyError (field "name") and ErrPasskeyNotFound, also for another
// user's passkey.
func (s *Service) RenamePasskey(ctx context.Context, userID, id, name string) error {
	name, err := CheckPasskeyName(name)
	if err != nil {
		return err
	}
	if !uuidRE.MatchString(id) {
		return ErrPasskeyNotFound
	}
	tag, err := s.pool.Exec(ctx, `UPDATE webauthn_credentials SET name = $3 WHERE id = $1 AND user_id = $2`, id, userID, name)
	if err != nil {
		return fmt.Errorf("accounts: rename passkey %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrPasskeyNotFound
	}
	return nil
}

// SetPasskeyPasswordless allows or forbids logging in with the passkey
// alone. It returns ErrPasskeyNotFound, also for another user's passkey.
func (s *Service) SetPasskeyPasswordless(ctx context.Context, userID, id string, on bool) error {
	if !uuidRE.MatchString(id) {
		return ErrPasskeyNotFound
	}
	tag, err := s.pool.Exec(ctx, `UPDATE webauthn_credentials SET passwordless = $3 WHERE id = $1 AND user_id = $2`, id, userID, on)
	if err != nil {
		return fmt.Errorf("accounts: set passwordless of passkey %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrPasskeyNotFound
	}
	return nil
}

// DeletePasskey removes one of the user's passkeys; in the same transaction
// it records the audit event and queues the "passkey removed" mail. It
// returns ErrPasskeyNotFound, also for another user's passkey.
func (s *Service) DeletePasskey(ctx context.Context, userID, id string) error {
	if !uuidRE.MatchString(id) {
		return ErrPasskeyNotFound
	}
	u, err := s.User(ctx, userID)
	if errors.Is(err, ErrNotFound) {
		return ErrPasskeyNotFound
	}
	if err != nil {
		return err
	}
	return storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		p, err := scanPasskey(tx.QueryRow(ctx, `DELETE FROM webauthn_credentials WHERE id = $1 AND user_id = $2 RETURNING `+passkeyColumns, id, userID))
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrPasskeyNotFound
		}
		if err != nil {
			return fmt.Errorf("accounts: delete passkey %s: %w", id, err)
		}
		if err := s.auditPasskey(ctx, tx, "user.passkey_removed", userID, p); err != nil {
			return err
		}
		return s.queueMail(ctx, tx, mail.PasskeyRemoved, u.Email, mail.Data{Name: greeting(u), Factor: p.Name})
	})
}

// PasskeyUse is what a successful assertion changes on the stored passkey.
type PasskeyUse struct {
	// PrevSignCount is the counter the assertion was checked against: the
	// update applies only if it is still the stored one.
	PrevSignCount uint32
	SignCount     uint32
	Flags         uint8
}

// RecordPasskeyUse stores the counter and flags of a successful assertion
// and the time of use. When another login moved the counter since it was
// read, nothing changes and it returns ErrPasskeyRace; ErrPasskeyNotFound
// when the passkey is gone.
func (s *Service) RecordPasskeyUse(ctx context.Context, id string, use PasskeyUse) error {
	tag, err := s.pool.Exec(ctx, `UPDATE webauthn_credentials SET sign_count = $3, flags = $4, last_used_at = $5
		WHERE id = $1 AND sign_count = $2`, id, int64(use.PrevSignCount), int64(use.SignCount), int16(use.Flags), s.cfg.Now())
	if err != nil {
		return fmt.Errorf("accounts: record use of passkey %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		var exists bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webauthn_credentials WHERE id = $1)`, id).Scan(&exists); err != nil {
			return fmt.Errorf("accounts: record use of passkey %s: %w", id, err)
		}
		if !exists {
			return ErrPasskeyNotFound
		}
		return ErrPasskeyRace
	}
	return nil
}

// FlagPasskeyClone marks a passkey whose signature counter went backwards
// (a cloned or broken authenticator) and audits it. The flag stays until
// the user deletes the passkey; the page shows it.
func (s *Service) FlagPasskeyClone(ctx context.Context, id string) error {
	return storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		p, err := scanPasskey(tx.QueryRow(ctx, `UPDATE webauthn_credentials SET clone_warning = true WHERE id = $1 RETURNING `+passkeyColumns, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrPasskeyNotFound
		}
		if err != nil {
			return fmt.Errorf("accounts: flag passkey %s: %w", id, err)
		}
		return s.auditPasskey(ctx, tx, "user.passkey_clone_warning", p.UserID, p)
	})
}

func (s *Service) auditPasskey(ctx context.Context, tx pgx.Tx, typ, userID string, p *Passkey) error {
	return s.auditSelfDetails(ctx, tx, typ, userID, map[string]any{"passkey_id": p.ID, "name": p.Name})
}

func nullJSON(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// DeletePasskeys removes every passkey of the user and the user's
// ceremonies in progress, in q: the passkey part of an admin's factor reset
// (ResetFactors audits and mails once for all the factors).
func (s *Service) DeletePasskeys(ctx context.Context, q storage.Querier, userID string) error {
	if _, err := q.Exec(ctx, `DELETE FROM webauthn_ceremonies WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("accounts: delete passkey ceremonies of %s: %w", userID, err)
	}
	if _, err := q.Exec(ctx, `DELETE FROM webauthn_credentials WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("accounts: delete passkeys of %s: %w", userID, err)
	}
	return nil
}
