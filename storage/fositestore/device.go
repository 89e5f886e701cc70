package fositestore

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/storage"
)

// DeviceStatus is where a device authorization stands.
type DeviceStatus string

// The states of a device authorization: pending until the user decides,
// then approved or denied; issued once its tokens were handed out.
const (
	DevicePending  DeviceStatus = "pending"
	DeviceApproved DeviceStatus = "approved"
	DeviceDenied   DeviceStatus = "denied"
	DeviceIssued   DeviceStatus = "issued"
)

// DeviceAuth is one device authorization request (RFC 8628). The codes
// themselves are never stored, only their hashes.
type DeviceAuth struct {
	RequestID   string
	ClientID    string
	Scopes      []string
	Audience    []string
	CreatedAt   time.Time
	ExpiresAt   time.Time
	Interval    time.Duration
	LastPolled  *time.Time
	Status      DeviceStatus
	Subject     string
	BrowserSess string
	AuthTime    *time.Time
	// AMR is how the approving user logged in (nil before a decision).
	AMR []string
	// Expired is set by PollDevice: the device code's lifetime has passed.
	Expired bool
}

// Now is the store's clock, which judges device and PAR expiry.
func (s *Store) Now() time.Time { return s.clock() }

// ErrDeviceNotPending is returned by DecideDevice when the user code names
// no request awaiting a decision (unknown, expired or already decided).
var ErrDeviceNotPending = errors.New("fositestore: no pending device authorization for this user code")

// CreateDeviceAuth stores a new pending device authorization under the
// hashes of its device and user codes. A user code already in use is
// ErrUserCodeTaken: the caller draws another.
func (s *Store) CreateDeviceAuth(ctx context.Context, deviceCode, userCode string, d *DeviceAuth) error {
	_, err := s.q(ctx).Exec(ctx, `INSERT INTO oauth2_device (device_code_hash, user_code_hash, request_id, client_id,
		scopes, audience, created_at, expires_at, poll_interval) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		hashKey(deviceCode), hashKey(userCode), d.RequestID, d.ClientID, strs(d.Scopes), strs(d.Audience),
		d.CreatedAt.UTC(), d.ExpiresAt.UTC(), int(d.Interval/time.Second))
	if storage.IsUniqueViolation(err, "oauth2_device_user_code_hash_key") {
		return ErrUserCodeTaken
	}
	return mapErr("create device auth", err)
}

// ErrUserCodeTaken is returned by CreateDeviceAuth when the user code
// collides with a live one.
var ErrUserCodeTaken = errors.New("fositestore: user code in use")

const deviceColumns = `request_id, client_id, scopes, audience, created_at, expires_at, poll_interval,
	last_polled_at, status, coalesce(subject, ''), coalesce(browser_session_id, ''), auth_time, amr`

func deviceDest(d *DeviceAuth, interval *int) []any {
	return []any{&d.RequestID, &d.ClientID, &d.Scopes, &d.Audience, &d.CreatedAt, &d.ExpiresAt, interval,
		&d.LastPolled, &d.Status, &d.Subject, &d.BrowserSess, &d.AuthTime, &d.AMR}
}

// PendingDeviceByUserCode returns the pending, unexpired authorization
// behind userCode, or ErrNotFound.
func (s *Store) PendingDeviceByUserCode(ctx context.Context, userCode string) (*DeviceAuth, error) {
	var d DeviceAuth
	var interval int
	err := s.q(ctx).QueryRow(ctx, `SELECT `+deviceColumns+` FROM oauth2_device
		WHERE user_code_hash = $1 AND status = 'pending' AND expires_at > $2`, hashKey(userCode), s.clock()).
		Scan(deviceDest(&d, &interval)...)
	if err != nil {
		return nil, mapErr("get device auth", err)
	}
	d.Interval = time.Duration(interval) * time.Second
	return &d, nil
}

// DecideDevice records the user's decision on the pending authorization
// behind userCode: approved for subject (with the browser session, its
// auth time and amr), or denied. Only a pending, unexpired request can be
// decided.
func (s *Store) DecideDevice(ctx context.Context, userCode string, approve bool, subject, browserSess string, authTime time.Time, amr []string) error {
	status := DeviceDenied
	if approve {
		status = DeviceApproved
	}
	tag, err := s.q(ctx).Exec(ctx, `UPDATE oauth2_device SET status = $2, subject = $3, browser_session_id = $4, auth_time = $5, amr = $7
		WHERE user_code_hash = $1 AND status = 'pending' AND expires_at > $6`,
		hashKey(userCode), string(status), subject, browserSess, authTime.UTC(), s.clock(), amr)
	if err != nil {
		return mapErr("decide device auth", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrDeviceNotPending
	}
	return nil
}

// PollDevice is one token-endpoint poll for deviceCode by clientID. It must
// run in a transaction (InTx): it locks the row, so concurrent polls of one
// device code are served one after another. It returns the authorization as
// it was before this poll, and records the poll: the time, a longer interval
// when the client polled too early (slowDown), and status issued when the
// authorization was approved (the caller issues the tokens in the same
// transaction, so they are handed out exactly once). ErrNotFound covers an
// unknown device code and one issued to another client.
func (s *Store) PollDevice(ctx context.Context, deviceCode, clientID string) (d *DeviceAuth, slowDown bool, err error) {
	if _, ok := ctx.Value(txKey{}).(*txState); !ok {
		return nil, false, ErrNoTransaction
	}
	q := s.q(ctx)
	d = &DeviceAuth{}
	var interval int
	err = q.QueryRow(ctx, `SELECT `+deviceColumns+` FROM oauth2_device WHERE device_code_hash = $1 FOR UPDATE`,
		hashKey(deviceCode)).Scan(deviceDest(d, &interval)...)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && d.ClientID != clientID) {
		return nil, false, ErrNotFound
	}
	if err != nil {
		return nil, false, mapErr("poll device auth", err)
	}
	d.Interval = time.Duration(interval) * time.Second
	now := s.clock()
	d.Expired = !now.Before(d.ExpiresAt)
	if d.Expired || d.Status == DeviceIssued {
		return d, false, nil
	}
	slowDown = d.LastPolled != nil && now.Before(d.LastPolled.Add(d.Interval))
	next := d.Status
	if d.Status == DeviceApproved && !slowDown {
		next = DeviceIssued
	}
	newInterval := interval
	if slowDown {
		newInterval += 5 // RFC 8628 §3.5: every slow_down adds 5 seconds
	}
	if _, err := q.Exec(ctx, `UPDATE oauth2_device SET last_polled_at = $2, poll_interval = $3, status = $4
		WHERE device_code_hash = $1`, hashKey(deviceCode), now, newInterval, string(next)); err != nil {
		return nil, false, mapErr("poll device auth", err)
	}
	return d, slowDown, nil
}
