package keys

import (
	"context"
	"crypto"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/authd/authd/storage"
)

// row is one signing_keys row. sealed is the encrypted private key.
type row struct {
	slot
	sealed    []byte
	updatedAt time.Time
}

// fingerprint summarises the table cheaply: any insert, update or delete
// changes it (updated_at is bumped by a trigger on update).
type fingerprint struct {
	count   int64
	updated time.Time
}

const selectRows = `SELECT kid, alg, generation, private_key, created_at, activates_at, retires_at, updated_at
FROM signing_keys ORDER BY alg, generation`

func queryFingerprint(ctx context.Context, q storage.Querier) (fingerprint, error) {
	var fp fingerprint
	err := q.QueryRow(ctx, `SELECT count(*), coalesce(max(updated_at), 'epoch'::timestamptz) FROM signing_keys`).
		Scan(&fp.count, &fp.updated)
	if err != nil {
		return fp, fmt.Errorf("keys: read key fingerprint: %w", err)
	}
	return fp, nil
}

// queryRows reads every key row and the fingerprint of exactly that read.
func queryRows(ctx context.Context, q storage.Querier, withSecret bool) ([]*row, fingerprint, error) {
	sql := selectRows
	if !withSecret {
		// List and scheduling never need the ciphertext; don't move it.
		sql = `SELECT kid, alg, generation, ''::bytea, created_at, activates_at, retires_at, updated_at
FROM signing_keys ORDER BY alg, generation`
	}
	rows, err := q.Query(ctx, sql)
	if err != nil {
		return nil, fingerprint{}, fmt.Errorf("keys: read keys: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*row, error) {
		var k row
		err := r.Scan(&k.kid, &k.alg, &k.generation, &k.sealed, &k.createdAt, &k.activatesAt, &k.retiresAt, &k.updatedAt)
		k.createdAt, k.activatesAt, k.retiresAt = k.createdAt.UTC(), k.activatesAt.UTC(), k.retiresAt.UTC()
		return &k, err
	})
	if err != nil {
		return nil, fingerprint{}, fmt.Errorf("keys: read keys: %w", err)
	}
	fp := fingerprint{count: int64(len(out)), updated: time.Unix(0, 0)}
	for _, k := range out {
		if k.updatedAt.After(fp.updated) {
			fp.updated = k.updatedAt
		}
	}
	return out, fp, nil
}

// lockSchedule takes the transaction-scoped advisory lock that serialises
// every change to the schedule across replicas. The transaction must be READ
// COMMITTED so that the reads after the lock see what the previous holder
// committed (a REPEATABLE READ snapshot would predate the lock).
func lockSchedule(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('authd.signing_keys', 0))`); err != nil {
		return fmt.Errorf("keys: lock key schedule: %w", err)
	}
	return nil
}

// change is what a planner did to the schedule, for logs and callers.
type change struct {
	created []*slot
	moved   []*slot
	deleted []*slot
}

// updateSchedule runs plan on the current chains under the schedule lock,
// generates keys for the slots it added, and writes the result. plan must be
// deterministic in its inputs: the transaction may run more than once.
func (m *Manager) updateSchedule(ctx context.Context, plan func(cs []*chain, now time.Time) error) (change, error) {
	return m.updateScheduleWith(ctx, plan, nil)
}

// updateScheduleWith is updateSchedule; within, when not nil, runs last in
// the same transaction (an audit record that must commit with the change).
func (m *Manager) updateScheduleWith(ctx context.Context, plan func(cs []*chain, now time.Time) error, within func(tx pgx.Tx) error) (change, error) {
	var ch change
	err := storage.InTx(ctx, m.pool, storage.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		ch = change{}
		if err := lockSchedule(ctx, tx); err != nil {
			return err
		}
		rows, _, err := queryRows(ctx, tx, false)
		if err != nil {
			return err
		}
		slots := make([]*slot, len(rows))
		for i, r := range rows {
			slots[i] = &r.slot
		}
		now := m.now()
		cs := chains(slots)
		if err := plan(cs, now); err != nil {
			return err
		}
		for _, c := range cs {
			for _, s := range c.expired(now, m.cfg.RetainAfter) {
				ch.deleted = append(ch.deleted, s)
			}
			for _, s := range c.slots {
				switch {
				case s.isNew():
					ch.created = append(ch.created, s)
				case s.changed:
					ch.moved = append(ch.moved, s)
				}
			}
		}
		if err := m.writeSchedule(ctx, tx, ch); err != nil {
			return err
		}
		if within != nil {
			return within(tx)
		}
		return nil
	})
	if err != nil {
		return change{}, err
	}
	return ch, nil
}

func (m *Manager) writeSchedule(ctx context.Context, tx pgx.Tx, ch change) error {
	signers := make([]crypto.Signer, len(ch.created))
	// RSA generation dominates a first start; do the keys side by side.
	var g errgroup.Group
	for i, s := range ch.created {
		g.Go(func() error {
			k, err := generate(s.alg)
			signers[i] = k
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("keys: generate key: %w", err)
	}
	for i, s := range ch.created {
		kid, err := thumbprint(signers[i].Public())
		if err != nil {
			return err
		}
		sealed, err := m.seal.seal(kid, signers[i])
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO signing_keys
(kid, alg, generation, private_key, created_at, activates_at, retires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			kid, s.alg, s.generation, sealed, s.createdAt, s.activatesAt, s.retiresAt)
		if storage.IsUniqueViolation(err, "signing_keys_alg_generation_key") {
			// Only possible if a writer bypassed the advisory lock: the
			// constraint keeps each generation to one key regardless.
			return fmt.Errorf("keys: %s generation %d was created concurrently by another writer: %w", s.alg, s.generation, err)
		}
		if err != nil {
			return fmt.Errorf("keys: insert key: %w", err)
		}
		s.kid = kid
	}
	for _, s := range ch.moved {
		if _, err := tx.Exec(ctx, `UPDATE signing_keys SET activates_at = $2, retires_at = $3 WHERE kid = $1`,
			s.kid, s.activatesAt, s.retiresAt); err != nil {
			return fmt.Errorf("keys: reschedule key %s: %w", s.kid, err)
		}
	}
	for _, s := range ch.deleted {
		if _, err := tx.Exec(ctx, `DELETE FROM signing_keys WHERE kid = $1`, s.kid); err != nil {
			return fmt.Errorf("keys: delete expired key %s: %w", s.kid, err)
		}
	}
	return nil
}
