package accounts

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// commonPasswords holds 1,000 passwords that top public breach lists (length
// 8 or more, since shorter ones fail the length rule anyway), one per line.
//
//go:embed common-passwords.txt
var commonPasswordsFile string

// MinPasswordBytes is the policy's minimum length (NIST SP 800-63B).
const MinPasswordBytes = 8

// PolicyError says why a password (or other input) was refused. Field names
// the request field, Reason is shown to the user.
type PolicyError struct {
	Field  string
	Reason string
}

func (e *PolicyError) Error() string { return "accounts: " + e.Field + ": " + e.Reason }

// ErrPolicy matches every *PolicyError with errors.Is.
var ErrPolicy = errors.New("accounts: input violates policy")

// Is lets errors.Is(err, ErrPolicy) match.
func (e *PolicyError) Is(target error) bool { return target == ErrPolicy }

// PasswordPolicy checks new passwords: a length range and a blocklist of
// common passwords; no composition rules, per NIST SP 800-63B.
type PasswordPolicy struct {
	common map[string]struct{}
}

// NewPasswordPolicy returns the policy with the embedded blocklist.
func NewPasswordPolicy() *PasswordPolicy {
	p := &PasswordPolicy{common: make(map[string]struct{}, 1000)}
	for _, line := range strings.Split(commonPasswordsFile, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			p.common[strings.ToLower(line)] = struct{}{}
		}
	}
	return p
}

// Check returns a *PolicyError naming field when password is unacceptable.
func (p *PasswordPolicy) Check(field, password string) error {
	switch {
	case !utf8.ValidString(password):
		return &PolicyError{Field: field, Reason: "must be valid UTF-8 text"}
	case len(password) < MinPasswordBytes:
		return &PolicyError{Field: field, Reason: fmt.Sprintf("must be at least %d characters", MinPasswordBytes)}
	case len(password) > MaxPasswordBytes:
		// bcrypt reads only 72 bytes; refusing is honest, truncating is not.
		return &PolicyError{Field: field, Reason: fmt.Sprintf("must be at most %d bytes", MaxPasswordBytes)}
	}
	if _, bad := p.common[strings.ToLower(password)]; bad {
		return &PolicyError{Field: field, Reason: "is one of the most common passwords; choose another"}
	}
	return nil
}

// Len returns the number of blocked passwords.
func (p *PasswordPolicy) Len() int { return len(p.common) }
