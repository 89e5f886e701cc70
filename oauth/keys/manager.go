package keys

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"github.com/authd/authd/storage"
	"github.com/jackc/pgx/v5"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// ErrNoActiveKey is returned by Signer when no loaded key for the algorithm
// is inside its signing window: the Manager has not been started, or its
// loop has been unable to reach the database for longer than Prepublish.
var ErrNoActiveKey = errors.New("keys: no active signing key")

// KeyInfo describes one key for `authd keys list`: never key material.
type KeyInfo struct {
	KID         string    `json:"kid"`
	Alg         string    `json:"alg"`
	State       string    `json:"state"` // next|active|retired
	Generation  int       `json:"generation"`
	CreatedAt   time.Time `json:"created_at"`
	ActivatesAt time.Time `json:"activates_at"`
	RetiresAt   time.Time `json:"retires_at"`
}

// Manager keeps the signing keys of one replica in memory and in step with
// the database. It is safe for concurrent use; Signer, PublicKey, JWKS and
// ServeJWKS never touch the database.
type Manager struct {
	pool         *pgxpool.Pool
	seal         *sealer
	cfg          Config
	log          *zap.Logger
	cacheControl string

	state    atomic.Pointer[snapshot]
	reloadMu sync.Mutex // one Reload at a time
	viewMu   sync.Mutex // one JWKS rebuild at a time
	started  atomic.Bool
	done     chan struct{}
}

// NewManager returns a Manager that stores private keys encrypted with
// AES-256-GCM under secretsKey (the 32-byte AUTHD_SECRETS_KEY, kid as
// additional data). It does not touch the database; call Start.
func NewManager(pool *pgxpool.Pool, secretsKey []byte, cfg Config, log *zap.Logger) (*Manager, error) {
	if pool == nil {
		return nil, errors.New("keys: NewManager: nil pool")
	}
	if log == nil {
		log = zap.NewNop()
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s, err := newSealer(secretsKey)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		pool:         pool,
		seal:         s,
		cfg:          cfg,
		log:          log.Named("keys"),
		cacheControl: "public, max-age=" + strconv.FormatInt(int64(cfg.JWKSMaxAge/time.Second), 10),
		done:         make(chan struct{}),
	}
	empty, err := newSnapshot(fingerprint{}, nil, m.now(), cfg.RetainAfter)
	if err != nil {
		return nil, err
	}
	m.state.Store(empty)
	return m, nil
}

// now is the configured clock at the database's precision, so that a time
// we write compares equal to the one we read back.
func (m *Manager) now() time.Time { return m.cfg.Now().UTC().Truncate(time.Microsecond) }

// Start loads the keys, creates what the schedule lacks (on a new database:
// an active and a next key per algorithm), and runs the poll and rotation
// loop until ctx ends. It fails if a stored key does not decrypt with
// AUTHD_SECRETS_KEY, before creating anything. Only the first start of a
// deployment generates keys; later starts only read.
func (m *Manager) Start(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("keys: Start called twice")
	}
	if err := m.start(ctx); err != nil {
		close(m.done)
		return err
	}
	go m.loop(ctx)
	return nil
}

func (m *Manager) start(ctx context.Context) error {
	if err := m.Reload(ctx); err != nil {
		return err
	}
	if err := m.maintain(ctx); err != nil {
		return err
	}
	for _, alg := range algorithms() {
		if _, _, err := m.Signer(alg); err != nil {
			return err
		}
	}
	return nil
}

// Done is closed when the loop started by Start has stopped, or when Start
// failed.
func (m *Manager) Done() <-chan struct{} { return m.done }

func (m *Manager) loop(ctx context.Context) {
	defer close(m.done)
	t := time.NewTicker(m.cfg.PollInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := m.Reload(ctx)
		if err == nil && m.needsMaintenance() {
			err = m.maintain(ctx)
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			// Logged once per outage: keys keep working from memory meanwhile.
			m.log.Error("signing key refresh failed; serving the keys already loaded", zap.Error(err))
			failing = true
		case err == nil && failing:
			m.log.Info("signing key refresh recovered")
			failing = false
		}
	}
}

// needsMaintenance reports, from memory, whether the schedule needs a write:
// an algorithm without an active or a next key, or a key past retention.
func (m *Manager) needsMaintenance() bool {
	s := m.state.Load()
	now := m.now()
	for _, c := range chains(s.slots()) {
		if c.active(now) == nil || c.pending(now) == nil || len(c.expired(now, m.cfg.RetainAfter)) > 0 {
			return true
		}
	}
	return false
}

// maintain brings the schedule up to date and reloads.
func (m *Manager) maintain(ctx context.Context) error {
	ch, err := m.updateSchedule(ctx, func(cs []*chain, now time.Time) error {
		for _, c := range cs {
			c.ensure(now, m.cfg)
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.logChange(ch)
	// Reload even when we changed nothing: another replica may have just
	// made the change we were about to make.
	return m.Reload(ctx)
}

// Rotate makes each algorithm's pre-published next key the active one now,
// retires the current active key (it stays in JWKS for RetainAfter) and
// schedules a new next key. If the next key was created less than
// PollInterval + JWKSMaxAge ago, some replica or client cache may not have
// it yet, so its activation is set to that moment instead of now and the old
// key signs until then; calling Rotate again meanwhile changes nothing.
func (m *Manager) Rotate(ctx context.Context) error { return m.RotateAndRecord(ctx, nil) }

// RotateAndRecord is Rotate; record, when not nil, runs inside the
// rotation's transaction with the kids taking over, so an audit event
// commits (or not) together with the rotation.
func (m *Manager) RotateAndRecord(ctx context.Context, record func(ctx context.Context, q storage.Querier, activating []string) error) error {
	// Reload first: it proves AUTHD_SECRETS_KEY decrypts the existing keys
	// before we encrypt new ones under it.
	if err := m.Reload(ctx); err != nil {
		return err
	}
	var takeover []*slot
	var within func(tx pgx.Tx) error
	if record != nil {
		within = func(tx pgx.Tx) error {
			kids := make([]string, len(takeover))
			for i, s := range takeover {
				kids[i] = s.kid
			}
			return record(ctx, tx, kids)
		}
	}
	ch, err := m.updateScheduleWith(ctx, func(cs []*chain, now time.Time) error {
		takeover = takeover[:0]
		for _, c := range cs {
			if _, next := c.rotate(now, m.cfg); next != nil {
				takeover = append(takeover, next)
			}
		}
		return nil
	}, within)
	if err != nil {
		return err
	}
	m.logChange(ch)
	now := m.now()
	for _, s := range takeover {
		if s.activatesAt.After(now) {
			m.log.Info("rotation deferred until the next key has been published long enough",
				zap.String("alg", s.alg), zap.String("kid", s.kid), zap.Time("activates_at", s.activatesAt))
		} else {
			m.log.Info("rotated signing key", zap.String("alg", s.alg), zap.String("kid", s.kid))
		}
	}
	return m.Reload(ctx)
}

func (m *Manager) logChange(ch change) {
	for _, s := range ch.created {
		m.log.Info("created signing key", slotFields(s)...)
	}
	for _, s := range ch.moved {
		m.log.Info("rescheduled signing key", slotFields(s)...)
	}
	for _, s := range ch.deleted {
		m.log.Info("deleted expired signing key", slotFields(s)...)
	}
}

func slotFields(s *slot) []zap.Field {
	return []zap.Field{
		zap.String("kid", s.kid), zap.String("alg", s.alg), zap.Int("generation", s.generation),
		zap.Time("activates_at", s.activatesAt), zap.Time("retires_at", s.retiresAt),
	}
}

// Reload reads the keys from the database now. It is cheap when nothing
// changed: it compares the table's fingerprint and decrypts only keys it has
// not seen. On error the keys already loaded stay in use.
func (m *Manager) Reload(ctx context.Context) error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	old := m.state.Load()
	if old.loaded {
		fp, err := queryFingerprint(ctx, m.pool)
		if err != nil {
			return err
		}
		if fp.equal(old.fp) {
			m.current() // refresh the time-dependent JWKS if due
			return nil
		}
	}
	rows, fp, err := queryRows(ctx, m.pool, true)
	if err != nil {
		return err
	}
	keys := make([]*loadedKey, 0, len(rows))
	for _, r := range rows {
		k := &loadedKey{slot: r.slot}
		if prev := old.byKID[r.kid]; prev != nil {
			k.signer = prev.signer // same kid, same key: skip the decryption
		} else {
			signer, err := m.seal.open(r.kid, r.sealed)
			if err != nil {
				return err
			}
			if err := checkAlg(r.alg, signer); err != nil {
				return err
			}
			k.signer = signer
		}
		keys = append(keys, k)
	}
	s, err := newSnapshot(fp, keys, m.now(), m.cfg.RetainAfter)
	if err != nil {
		return err
	}
	s.loaded = true
	m.state.Store(s)
	return nil
}

// Signer returns the kid and private key that sign for alg ("ES256" or
// "RS256") now: an *ecdsa.PrivateKey or *rsa.PrivateKey. Callers must put the
// kid in the JWT header. Errors: ErrNoActiveKey, or an unsupported alg.
func (m *Manager) Signer(alg string) (kid string, key crypto.Signer, err error) {
	if alg != ES256 && alg != RS256 {
		return "", nil, fmt.Errorf("keys: unsupported algorithm %q", alg)
	}
	// Same rule as chain.active, without allocating: this runs per token.
	now := m.now()
	var best *loadedKey
	for _, k := range m.state.Load().keys {
		if k.alg != alg || !k.signsAt(now) {
			continue
		}
		if best == nil || k.activatesAt.After(best.activatesAt) ||
			(k.activatesAt.Equal(best.activatesAt) && k.generation > best.generation) {
			best = k
		}
	}
	if best == nil {
		return "", nil, fmt.Errorf("%w for %s", ErrNoActiveKey, alg)
	}
	return best.kid, best.signer, nil
}

// PublicKey returns the public key and alg of any key currently published in
// JWKS (next, active, or retired within RetainAfter), for verifying tokens by
// their kid.
func (m *Manager) PublicKey(kid string) (pub crypto.PublicKey, alg string, ok bool) {
	k := m.current().published[kid]
	if k == nil {
		return nil, "", false
	}
	return k.signer.Public(), k.alg, true
}

// List returns every stored key with its state at the current time, newest
// first per algorithm. It reads the database and decrypts nothing.
func (m *Manager) List(ctx context.Context) ([]KeyInfo, error) {
	rows, _, err := queryRows(ctx, m.pool, false)
	if err != nil {
		return nil, err
	}
	slots := make([]*slot, len(rows))
	for i, r := range rows {
		slots[i] = &r.slot
	}
	now := m.now()
	var out []KeyInfo
	for _, c := range chains(slots) {
		active := c.active(now)
		for i := len(c.slots) - 1; i >= 0; i-- {
			s := c.slots[i]
			state := StateRetired
			switch {
			case s == active:
				state = StateActive
			case s.activatesAt.After(now):
				state = StateNext
			}
			out = append(out, KeyInfo{
				KID: s.kid, Alg: s.alg, State: state, Generation: s.generation,
				CreatedAt: s.createdAt, ActivatesAt: s.activatesAt, RetiresAt: s.retiresAt,
			})
		}
	}
	return out, nil
}
