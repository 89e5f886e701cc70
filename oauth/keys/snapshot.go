package keys

import (
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
)

// loadedKey is a stored key as this replica holds it: its schedule and its decrypted private half.
type loadedKey struct {
	slot
	signer crypto.Signer
}

// snapshot is an immutable view of the loaded keys, swapped atomically so
// that readers never lock. The JWKS part depends on the time as well as the
// keys (retired keys drop out), so it carries the moment it goes stale.
type snapshot struct {
	loaded bool
	fp     fingerprint
	keys   []*loadedKey // algorithms() order, newest generation first
	byKID  map[string]*loadedKey

	published map[string]*loadedKey
	jwks      []byte
	etag      string
	staleAt   time.Time // when the first published key leaves JWKS; zero: never
}

func (s *snapshot) slots() []*slot {
	out := make([]*slot, len(s.keys))
	for i, k := range s.keys {
		out[i] = &k.slot
	}
	return out
}

func (fp fingerprint) equal(o fingerprint) bool {
	return fp.count == o.count && fp.updated.Equal(o.updated)
}

// newSnapshot orders keys and builds the JWKS as published at now.
func newSnapshot(fp fingerprint, keys []*loadedKey, now time.Time, retain time.Duration) (*snapshot, error) {
	rank := map[string]int{}
	for i, a := range algorithms() {
		rank[a] = i
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].alg != keys[j].alg {
			return rank[keys[i].alg] < rank[keys[j].alg]
		}
		return keys[i].generation > keys[j].generation
	})
	s := &snapshot{fp: fp, keys: keys, byKID: make(map[string]*loadedKey, len(keys))}
	for _, k := range keys {
		s.byKID[k.kid] = k
	}
	return s, s.buildJWKS(now, retain)
}

// buildJWKS publishes every key from its creation until retain after it
// retires: next keys so clients have them before they sign, retired keys so
// tokens they signed verify until they expire. The order does not depend on
// the time, so the ETag changes only when the set of keys does.
func (s *snapshot) buildJWKS(now time.Time, retain time.Duration) error {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	s.published = make(map[string]*loadedKey, len(s.keys))
	s.staleAt = time.Time{}
	for _, k := range s.keys {
		until := k.retiresAt.Add(retain)
		if !now.Before(until) {
			continue
		}
		if s.staleAt.IsZero() || until.Before(s.staleAt) {
			s.staleAt = until
		}
		s.published[k.kid] = k
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.signer.Public(), KeyID: k.kid, Algorithm: k.alg, Use: "sig"})
	}
	body, err := json.Marshal(set)
	if err != nil {
		return fmt.Errorf("keys: encode JWKS: %w", err)
	}
	sum := sha256.Sum256(body)
	s.jwks = body
	s.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
	return nil
}

func (s *snapshot) stale(now time.Time) bool {
	return !s.staleAt.IsZero() && !now.Before(s.staleAt)
}

// current returns the snapshot, first rebuilding its JWKS if a published key
// has reached the end of its retention since it was built.
func (m *Manager) current() *snapshot {
	s := m.state.Load()
	now := m.now()
	if !s.stale(now) {
		return s
	}
	m.viewMu.Lock()
	defer m.viewMu.Unlock()
	for {
		s = m.state.Load()
		if !s.stale(now) {
			return s
		}
		next := &snapshot{loaded: s.loaded, fp: s.fp, keys: s.keys, byKID: s.byKID}
		if err := next.buildJWKS(now, m.cfg.RetainAfter); err != nil {
			// Marshalling keys that marshalled before cannot fail; if it
			// does, keep serving the previous document.
			m.log.Error("rebuild JWKS", zap.Error(err))
			return s
		}
		if m.state.CompareAndSwap(s, next) {
			return next
		}
	}
}

// JWKS returns the JSON Web Key Set of the published public keys, encoded
// once per change, and its strong ETag (quoted).
func (m *Manager) JWKS() (body []byte, etag string) {
	s := m.current()
	return s.jwks, s.etag
}
