package fositestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	fositestorage "github.com/ory/fosite/storage"

	"go.uber.org/zap"

	"github.com/authd/authd/internal/notifycache"
	"github.com/authd/authd/storage"
)

// Compile-time proof that Store fills every contract fosite's factories
// type-assert at start-up, so a gap breaks the build instead of Compose.
var (
	_ fosite.ClientManager               = (*Store)(nil)
	_ fosite.Storage                     = (*Store)(nil)
	_ oauth2.CoreStorage                 = (*Store)(nil)
	_ oauth2.TokenRevocationStorage      = (*Store)(nil)
	_ openid.OpenIDConnectRequestStorage = (*Store)(nil)
	_ pkce.PKCERequestStorage            = (*Store)(nil)
	_ fositestorage.Transactional        = (*Store)(nil)
	_ fosite.OpenIDConnectClient         = (*Client)(nil)
	_ fosite.Client                      = (*Client)(nil)
	_ fosite.Hasher                      = SHA256Hasher{}
)

// Options configures a Store. The zero value is usable.
type Options struct {
	// Now is the clock for JTI expiry; time.Now when nil. Tests move it
	// instead of sleeping. Refresh rotation times come from the database's
	// clock instead, so that replicas agree.
	Now func() time.Time
	// IsoLevel is the isolation of transactions begun by BeginTX (and so by
	// fosite); REPEATABLE READ when empty.
	IsoLevel pgx.TxIsoLevel
	// Log receives the client watcher's connection warnings; nil discards.
	Log *zap.Logger
}

// Store is fosite's storage over PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	now  func() time.Time
	iso  pgx.TxIsoLevel
	log  *zap.Logger
	// clients caches GetClient while WatchClients listens (clientcache.go).
	clients *notifycache.Cache[*Client]
	// revoked remembers this replica's recent revocations (revoked.go).
	revoked *revocations
	// accessInserts batches access tokens created outside a transaction
	// (batch.go).
	accessInserts *insertBatcher
}

// New returns a Store on pool. The schema comes from migration 0004.
func New(pool *pgxpool.Pool, opts Options) *Store {
	s := &Store{pool: pool, now: opts.Now, iso: opts.IsoLevel, log: opts.Log,
		clients: newClientCache(), revoked: newRevocations()}
	s.accessInserts = newInsertBatcher(s, tableAccess)
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.iso == "" {
		s.iso = pgx.RepeatableRead
	}
	return s
}

// Querier returns the transaction begun in ctx (BeginTX, InTx), or the pool,
// so callers can write their own rows (an audit record) atomically with the
// store's.
func (s *Store) Querier(ctx context.Context) storage.Querier { return s.q(ctx) }

func (s *Store) q(ctx context.Context) storage.Querier {
	if st := txOf(ctx); st != nil {
		return st.tx
	}
	return s.pool
}

// clock returns the store's current time in UTC, truncated to what
// timestamptz keeps so values compare equal after a round trip.
func (s *Store) clock() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}

// hashKey is the row key for anything fosite hands us: signatures can be long
// (JWT access tokens) and the OIDC key is a raw, usable authorization code.
func hashKey(k string) string {
	sum := sha256.Sum256([]byte(k))
	return hex.EncodeToString(sum[:])
}

// strs turns nil into an empty slice: pgx encodes a nil slice as NULL and the
// array columns are NOT NULL.
func strs(a []string) []string {
	if a == nil {
		return []string{}
	}
	return a
}

// nullTime maps the zero time (fosite's "no expiry") to NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
