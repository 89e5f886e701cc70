package passkey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/storage"
)

// MethodWebAuthn names the passkey method of the login's second step.
const MethodWebAuthn = "webauthn"

// FactorStore is what the second-factor method needs of the accounts
// beyond the ceremonies (*accounts.Service).
type FactorStore interface {
	User(ctx context.Context, id string) (*accounts.User, error)
	DeletePasskeys(ctx context.Context, q storage.Querier, userID string) error
}

// Factor is the passkey as an accounts.SecondFactor: the login's second
// step offers it to a user holding a passkey, next to the authenticator
// app. Create it with Service.Factor.
type Factor struct {
	svc   *Service
	store FactorStore
}

// Factor returns the passkey second-factor method over s.
func (s *Service) Factor(store FactorStore) *Factor { return &Factor{svc: s, store: store} }

var _ accounts.SecondFactor = (*Factor)(nil)

// Method implements accounts.SecondFactor.
func (f *Factor) Method() string { return MethodWebAuthn }

// AMR implements accounts.SecondFactor: a passkey after the password makes
// pwd hwk mfa (Result.AMR).
func (f *Factor) AMR() []string { return []string{accounts.AMRHardware} }

// Enrolled implements accounts.SecondFactor.
func (f *Factor) Enrolled(ctx context.Context, userID string) (bool, error) {
	return f.svc.Enrolled(ctx, userID)
}

// Prepared is what the step page's passkey form carries: the
// navigator.credentials.get options (the publicKey member, read by
// static/webauthn.js from the form's data-public-key attribute) and the
// token naming the ceremony, posted back in the form's "ceremony" field.
type Prepared struct {
	PublicKey string
	Ceremony  string
}

// Prepare implements accounts.SecondFactor. It runs when the step page is
// rendered, GET included, and writes a ceremony row; that is safe because
// the row is bound to the pending login ch (one per pending login: a new
// one replaces the last, so reloading never piles rows up, and it is
// deleted with the pending login). The ceremony grants nothing by itself:
// only the pending login's cookie and the user's passkey finish it.
func (f *Factor) Prepare(ctx context.Context, ch *accounts.Challenge) (any, error) {
	u, err := f.store.User(ctx, ch.UserID)
	if err != nil {
		return nil, err
	}
	o, err := f.svc.BeginSecondFactor(ctx, u, ch.ID)
	if err != nil {
		return nil, err
	}
	var opts struct {
		PublicKey json.RawMessage `json:"publicKey"`
	}
	if err := json.Unmarshal(o.JSON, &opts); err != nil {
		return nil, fmt.Errorf("passkey: decode second-factor options: %w", err)
	}
	return &Prepared{PublicKey: string(opts.PublicKey), Ceremony: o.Token}, nil
}

// Verify implements accounts.SecondFactor: form carries the ceremony token
// and the browser's assertion ("credential"). An unknown, used or foreign
// ceremony, a rejected assertion and a cloned passkey are all
// accounts.ErrFactorRejected.
func (f *Factor) Verify(ctx context.Context, ch *accounts.Challenge, form url.Values) error {
	u, err := f.store.User(ctx, ch.UserID)
	if err != nil {
		return err
	}
	_, err = f.svc.FinishSecondFactor(ctx, u, ch.ID, form.Get("ceremony"), []byte(form.Get("credential")))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, accounts.ErrNoCeremony), errors.Is(err, ErrRejected), errors.Is(err, ErrCloned):
		return fmt.Errorf("%w: %v", accounts.ErrFactorRejected, err)
	}
	return err
}

// Reset implements accounts.SecondFactor: the admin's reset removes the
// user's passkeys.
func (f *Factor) Reset(ctx context.Context, q storage.Querier, userID string) error {
	return f.store.DeletePasskeys(ctx, q, userID)
}
